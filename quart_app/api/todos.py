"""To-dos over REST: the same list the voice assistant and the phone change, through the same TodoService, so a
change made here reaches the user's live pages too."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field
from quart import Blueprint
from quart_schema import validate_request, validate_response

from ..assistant.feature import AssistantFeature
from ..assistant.todos import TodoService
from ..db.todos import MAX_DUE_DATE_CHARS, MAX_TITLE_CHARS
from ..errors import APIError
from ..web.guards import current_principal, require_auth
from ..web.state import feature

blueprint = Blueprint("todos", __name__)


def _not_blank(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE_CHARS), AfterValidator(_not_blank)]
DueDate = Annotated[
    str,
    Field(max_length=MAX_DUE_DATE_CHARS, description="As said or typed: 'tomorrow', 'friday', '2025-03-01'."),
]
Priority = Literal["high", "medium", "low"]


class TodoIn(BaseModel):
    title: Title
    due_date: DueDate | None = None
    priority: Priority | None = None


class TodoPatch(BaseModel):
    """Only the fields present change; `null` clears `due_date` or `priority`."""

    title: Title | None = None
    done: bool | None = None
    due_date: DueDate | None = None
    priority: Priority | None = None


class TodoOut(BaseModel):
    id: str
    title: str
    done: bool
    due_date: str | None
    priority: str | None
    created_at: float
    updated_at: float
    completed_at: float | None


class TodoListOut(BaseModel):
    items: list[TodoOut]


def _todos() -> TodoService:
    return feature(AssistantFeature).todos


def _not_found() -> APIError:
    return APIError(404, "not_found", "No such to-do.")


@blueprint.get("/api/todos")
@validate_response(TodoListOut)
@require_auth()
async def list_todos() -> TodoListOut:
    """The caller's to-dos, in the order they were added."""
    todos = await _todos().list(current_principal().user.id)
    return TodoListOut(items=[TodoOut(**t.public()) for t in todos])


@blueprint.post("/api/todos")
@validate_request(TodoIn)
@validate_response(TodoOut, 201)
@require_auth()
async def create_todo(data: TodoIn) -> tuple[TodoOut, int]:
    """Add a to-do to the caller's list (at most 500 per user: 409 too_many_todos)."""
    todo = await _todos().add(
        current_principal().user.id, data.title, due_date=data.due_date or None, priority=data.priority
    )
    return TodoOut(**todo.public()), 201


@blueprint.patch("/api/todos/<todo_id>")
@validate_request(TodoPatch)
@validate_response(TodoOut)
@require_auth()
async def update_todo(todo_id: str, data: TodoPatch) -> TodoOut:
    """Change some fields of one of the caller's to-dos; 404 for anyone else's."""
    changes: dict[str, Any] = {}
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value is None and name in ("title", "done"):
            raise APIError(400, "validation_error", f"{name} may not be null.", extra={"fields": {name: "not null"}})
        changes[name] = value
    service = _todos()
    user_id = current_principal().user.id
    todo = await service.update(user_id, todo_id, **changes) if changes else await service.get(user_id, todo_id)
    if todo is None:
        raise _not_found()
    return TodoOut(**todo.public())


@blueprint.delete("/api/todos/<todo_id>")
@require_auth()
async def delete_todo(todo_id: str) -> tuple[str, int]:
    """Remove one of the caller's to-dos; 404 for anyone else's."""
    if not await _todos().delete(current_principal().user.id, todo_id):
        raise _not_found()
    return "", 204
