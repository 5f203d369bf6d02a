"""TodoService: one user's to-do list, for REST, the assistant's tools and the phone alike.

Every change (add, update, complete, delete) calls each subscriber with the user's id and the user's whole
list after the change, so a change made anywhere (REST, a typed request, a phone call) reaches the user's live
pages. A failing subscriber is logged and never undoes or fails the change.

    service = TodoService(database)            # a DatabaseHandle (or anything with .get() -> Database)
    service.subscribe(listener)                # async listener(user_id, todos)
    todo = await service.add(user_id, "buy milk", due_date="tomorrow", priority="high")
    todos = await service.list(user_id)
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from databases import Database

from ..db import todos as store
from ..db.todos import MAX_TODOS_PER_USER, UNSET, Todo
from .errors import AssistantError

log = logging.getLogger(__name__)

Listener = Callable[[str, "builtins.list[Todo]"], Awaitable[None]]


class DatabaseSource(Protocol):
    def get(self) -> Database: ...


class TooManyTodos(AssistantError):
    def __init__(self) -> None:
        super().__init__("too_many_todos", f"A list holds at most {MAX_TODOS_PER_USER} to-dos.", 409)


class TodoService:
    def __init__(self, database: DatabaseSource) -> None:
        self.database = database
        self._listeners: builtins.list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(user_id, todos)` after every change to a user's list."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def list(self, user_id: str) -> builtins.list[Todo]:
        return await store.list_todos(self.database.get(), user_id)

    async def get(self, user_id: str, todo_id: str) -> Todo | None:
        return await store.get_todo(self.database.get(), user_id, todo_id)

    async def find(self, user_id: str, title: str) -> Todo | None:
        """The user's to-do called `title`, ignoring case and surrounding spaces; an open one before a done
        one, the oldest first. None when no title matches."""
        wanted = _fold(title)
        matches = [t for t in await self.list(user_id) if _fold(t.title) == wanted]
        matches.sort(key=lambda t: (t.done, t.created_at))
        return matches[0] if matches else None

    async def add(self, user_id: str, title: str, *, due_date: str | None = None, priority: str | None = None) -> Todo:
        """ValueError for a bad field; TooManyTodos past MAX_TODOS_PER_USER."""
        db = self.database.get()
        store.check_fields(title, due_date, priority)
        if await store.count_todos(db, user_id) >= MAX_TODOS_PER_USER:
            raise TooManyTodos()
        todo = await store.create_todo(db, user_id, title, due_date=due_date, priority=priority)
        await self._changed(user_id)
        return todo

    async def update(
        self,
        user_id: str,
        todo_id: str,
        *,
        title: Any = UNSET,
        done: Any = UNSET,
        due_date: Any = UNSET,
        priority: Any = UNSET,
    ) -> Todo | None:
        """Change the given fields (None clears due_date/priority); None when the user has no such to-do."""
        todo = await store.update_todo(
            self.database.get(), user_id, todo_id, title=title, done=done, due_date=due_date, priority=priority
        )
        if todo is not None:
            await self._changed(user_id)
        return todo

    async def complete(self, user_id: str, todo_id: str, done: bool = True) -> Todo | None:
        return await self.update(user_id, todo_id, done=done)

    async def delete(self, user_id: str, todo_id: str) -> bool:
        gone = await store.delete_todo(self.database.get(), user_id, todo_id)
        if gone:
            await self._changed(user_id)
        return gone

    async def _changed(self, user_id: str) -> None:
        if not self._listeners:
            return
        todos = await self.list(user_id)
        for listener in builtins.list(self._listeners):
            try:
                await listener(user_id, todos)
            except Exception:
                log.exception("a to-do listener failed for %s", user_id)


def _fold(title: str) -> str:
    return " ".join(title.split()).casefold()
