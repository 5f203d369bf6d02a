"""The assistant's function tools over the to-do list: their OpenAI schemas and their execution.

Every tool runs for the signed-in user only (the user id comes from the caller, never from the model). An item
is named by its title, matched ignoring case; a title that matches nothing, a bad argument or unparseable JSON
is a tool result saying so (`{"ok": false, "error": ...}`) for the model to relay, never an exception.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from ..db.todos import MAX_DUE_DATE_CHARS, MAX_TITLE_CHARS, PRIORITIES, UNSET, Todo
from .errors import AssistantError
from .todos import TodoService

log = logging.getLogger(__name__)

_TITLE = {"type": "string", "description": "The to-do's title, as the user said it.", "maxLength": MAX_TITLE_CHARS}
_DUE = {
    "type": "string",
    "description": "When it is due, in the user's words (e.g. 'tomorrow', 'friday', '2025-03-01').",
    "maxLength": MAX_DUE_DATE_CHARS,
}
_PRIORITY = {"type": "string", "enum": list(PRIORITIES), "description": "How important it is."}


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


TOOLS: list[dict[str, Any]] = [
    _function(
        "add_todo",
        "Add a to-do to the user's list.",
        {"title": _TITLE, "due_date": _DUE, "priority": _PRIORITY},
        ["title"],
    ),
    _function("list_todos", "List the user's to-dos, open and done.", {}, []),
    _function(
        "complete_todo",
        "Mark one of the user's to-dos as done.",
        {"title": {**_TITLE, "description": "The title of the existing to-do."}},
        ["title"],
    ),
    _function(
        "delete_todo",
        "Remove one of the user's to-dos from the list.",
        {"title": {**_TITLE, "description": "The title of the existing to-do."}},
        ["title"],
    ),
    _function(
        "update_todo",
        "Change one of the user's to-dos: rename it, set its due date or its priority.",
        {
            "title": {**_TITLE, "description": "The title of the existing to-do."},
            "new_title": {**_TITLE, "description": "The new title, when renaming."},
            "due_date": _DUE,
            "priority": _PRIORITY,
        },
        ["title"],
    ),
]

TOOL_NAMES = tuple(tool["function"]["name"] for tool in TOOLS)


@dataclass(frozen=True)
class ToolOutcome:
    content: str  # the JSON text returned to the model
    changed: bool  # whether the user's list changed


def _result(changed: bool, **data: Any) -> ToolOutcome:
    return ToolOutcome(json.dumps({"ok": True, **data}, ensure_ascii=False), changed)


def _refusal(message: str) -> ToolOutcome:
    return ToolOutcome(json.dumps({"ok": False, "error": message}, ensure_ascii=False), False)


def _item(todo: Todo) -> dict[str, Any]:
    return {"title": todo.title, "done": todo.done, "due_date": todo.due_date, "priority": todo.priority}


def _text(value: Any) -> str | None:
    """An optional string argument: None for missing, null or blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected a string")
    value = value.strip()
    return value or None


def _priority(value: Any) -> str | None:
    text = _text(value)
    return text.lower() if text else None


class TodoTools:
    """Runs the model's tool calls against one user's list."""

    def __init__(self, todos: TodoService) -> None:
        self.todos = todos

    async def run(self, user_id: str, name: str, arguments: str | dict[str, Any] | None) -> ToolOutcome:
        try:
            args = json.loads(arguments or "{}") if isinstance(arguments, str) or arguments is None else arguments
        except ValueError:
            return _refusal("the arguments were not valid JSON")
        if not isinstance(args, dict):
            return _refusal("the arguments must be a JSON object")
        handler = getattr(self, f"_{name}", None) if name in TOOL_NAMES else None
        if handler is None:
            return _refusal(f"there is no tool called {name}")
        try:
            outcome: ToolOutcome = await handler(user_id, args)
        except ValueError as exc:
            return _refusal(str(exc))
        except AssistantError as exc:
            return _refusal(exc.message)
        return outcome

    async def _existing(self, user_id: str, args: dict[str, Any]) -> tuple[Todo | None, str]:
        title = _text(args.get("title"))
        if title is None:
            raise ValueError("title is required")
        return await self.todos.find(user_id, title), title

    async def _add_todo(self, user_id: str, args: dict[str, Any]) -> ToolOutcome:
        title = _text(args.get("title"))
        if title is None:
            raise ValueError("title is required")
        todo = await self.todos.add(
            user_id, title, due_date=_text(args.get("due_date")), priority=_priority(args.get("priority"))
        )
        return _result(True, todo=_item(todo))

    async def _list_todos(self, user_id: str, args: dict[str, Any]) -> ToolOutcome:
        return _result(False, todos=[_item(t) for t in await self.todos.list(user_id)])

    async def _complete_todo(self, user_id: str, args: dict[str, Any]) -> ToolOutcome:
        todo, title = await self._existing(user_id, args)
        if todo is None:
            return _refusal(f"there is no to-do called '{title}' on the list")
        done = await self.todos.complete(user_id, todo.id)
        if done is None:  # deleted meanwhile
            return _refusal(f"there is no to-do called '{title}' on the list")
        return _result(True, todo=_item(done))

    async def _delete_todo(self, user_id: str, args: dict[str, Any]) -> ToolOutcome:
        todo, title = await self._existing(user_id, args)
        if todo is None or not await self.todos.delete(user_id, todo.id):
            return _refusal(f"there is no to-do called '{title}' on the list")
        return _result(True, todo=_item(todo))

    async def _update_todo(self, user_id: str, args: dict[str, Any]) -> ToolOutcome:
        todo, title = await self._existing(user_id, args)
        if todo is None:
            return _refusal(f"there is no to-do called '{title}' on the list")
        new_title, due, priority = (
            _text(args.get("new_title")),
            _text(args.get("due_date")),
            _priority(args.get("priority")),
        )
        if new_title is None and due is None and priority is None:
            return _refusal("nothing to change: give a new title, a due date or a priority")
        updated = await self.todos.update(
            user_id,
            todo.id,
            title=new_title if new_title is not None else UNSET,
            due_date=due if due is not None else UNSET,
            priority=priority if priority is not None else UNSET,
        )
        if updated is None:
            return _refusal(f"there is no to-do called '{title}' on the list")
        return _result(True, todo=_item(updated))
