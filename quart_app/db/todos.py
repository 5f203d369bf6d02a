"""To-dos: each user's list for the voice assistant, REST and the phone.

Every query is scoped to one user: a to-do id of another user behaves like one that does not exist.
`due_date` is stored as said ("tomorrow", "2025-03-01"); `priority` is one of PRIORITIES or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from databases import Database

from .database import new_id, now
from .tables import todos

PRIORITIES = ("high", "medium", "low")
MAX_TITLE_CHARS = 200
MAX_DUE_DATE_CHARS = 64
MAX_TODOS_PER_USER = 500


class _Unset:
    """Marks an argument that was not given (None means "clear this field")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Todo:
    id: str
    user_id: str
    title: str
    done: bool
    due_date: str | None
    priority: str | None
    created_at: float
    updated_at: float
    completed_at: float | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "done": self.done,
            "due_date": self.due_date,
            "priority": self.priority,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
        }


def _todo(row: Any) -> Todo:
    data = dict(row._mapping)
    data["done"] = bool(data["done"])
    return Todo(**data)


def check_fields(title: str | None = None, due_date: str | None = None, priority: str | None = None) -> None:
    """ValueError naming the first bad field (title blank or too long, due date too long, unknown priority)."""
    if title is not None and not 1 <= len(title.strip()) <= MAX_TITLE_CHARS:
        raise ValueError(f"title must be 1 to {MAX_TITLE_CHARS} characters")
    if due_date is not None and len(due_date) > MAX_DUE_DATE_CHARS:
        raise ValueError(f"due_date must be at most {MAX_DUE_DATE_CHARS} characters")
    if priority is not None and priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")


async def create_todo(
    db: Database, user_id: str, title: str, *, due_date: str | None = None, priority: str | None = None
) -> Todo:
    check_fields(title, due_date, priority)
    stamp = now()
    todo = Todo(new_id("todo"), user_id, title.strip(), False, due_date or None, priority, stamp, stamp, None)
    values = dict(todo.__dict__, done=0)
    await db.execute(todos.insert().values(**values))
    return todo


async def get_todo(db: Database, user_id: str, todo_id: str) -> Todo | None:
    row = await db.fetch_one(sa.select(todos).where(todos.c.id == todo_id, todos.c.user_id == user_id))
    return None if row is None else _todo(row)


async def list_todos(db: Database, user_id: str) -> list[Todo]:
    """The user's to-dos, oldest first (the order they were added)."""
    rows = await db.fetch_all(
        sa.select(todos).where(todos.c.user_id == user_id).order_by(todos.c.created_at, todos.c.id)
    )
    return [_todo(row) for row in rows]


async def count_todos(db: Database, user_id: str) -> int:
    return int(await db.fetch_val(sa.select(sa.func.count()).select_from(todos).where(todos.c.user_id == user_id)))


async def update_todo(
    db: Database,
    user_id: str,
    todo_id: str,
    *,
    title: Any = UNSET,
    done: Any = UNSET,
    due_date: Any = UNSET,
    priority: Any = UNSET,
) -> Todo | None:
    """Change the given fields (None clears due_date/priority); None when the user has no such to-do."""
    check_fields(
        None if title is UNSET else title,
        None if due_date is UNSET else due_date,
        None if priority is UNSET else priority,
    )
    stamp = now()
    changes: dict[str, Any] = {"updated_at": stamp}
    if title is not UNSET:
        changes["title"] = str(title).strip()
    if due_date is not UNSET:
        changes["due_date"] = due_date or None
    if priority is not UNSET:
        changes["priority"] = priority
    if done is not UNSET:
        changes["done"] = 1 if done else 0
        # completed_at is when it was last marked done; reopening clears it.
        changes["completed_at"] = stamp if done else None
    query = (
        todos.update().where(todos.c.id == todo_id, todos.c.user_id == user_id).values(**changes).returning(*todos.c)
    )
    row = await db.fetch_one(query)
    return None if row is None else _todo(row)


async def delete_todo(db: Database, user_id: str, todo_id: str) -> bool:
    gone = await db.fetch_one(
        todos.delete().where(todos.c.id == todo_id, todos.c.user_id == user_id).returning(todos.c.id)
    )
    return gone is not None
