"""To-dos, assistant memory and users' phone numbers, on SQLite and PostgreSQL (migration m0007)."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from databases import Database

from quart_app.db import assistant_memory, todos, users
from quart_app.db.migrations import all_migrations


async def _user(db: Database, phone: str | None = None) -> users.User:
    return await users.create_user(db, email=None, name="T", phone=phone)


def test_migrations_stay_gapless_and_0007_adds_the_assistant_tables() -> None:
    found = all_migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    m0007 = next(m for m in found if m.version == 7)
    assert set(m0007.module.TABLES) == {"todos", "assistant_messages"}


async def test_create_list_update_delete_scoped_to_the_user(db: Database) -> None:
    alice, bob = await _user(db), await _user(db)
    milk = await todos.create_todo(db, alice.id, "  buy milk ", due_date="tomorrow", priority="high")
    bread = await todos.create_todo(db, alice.id, "bread")
    await todos.create_todo(db, bob.id, "bob's own")

    listed = await todos.list_todos(db, alice.id)
    assert [t.title for t in listed] == ["buy milk", "bread"]
    assert listed[0] == milk and milk.done is False and milk.due_date == "tomorrow" and milk.priority == "high"
    assert milk.public()["title"] == "buy milk" and set(milk.public()) >= {
        "id",
        "title",
        "done",
        "due_date",
        "priority",
        "created_at",
        "updated_at",
    }

    done = await todos.update_todo(db, alice.id, milk.id, done=True)
    assert done is not None and done.done is True and done.completed_at is not None
    assert done.due_date == "tomorrow" and done.priority == "high"  # untouched fields stay
    reopened = await todos.update_todo(db, alice.id, milk.id, done=False, priority=None, title="buy oat milk")
    assert reopened is not None and not reopened.done and reopened.completed_at is None
    assert reopened.priority is None and reopened.title == "buy oat milk" and reopened.due_date == "tomorrow"

    # Another user's id behaves like a missing one.
    assert await todos.get_todo(db, bob.id, bread.id) is None
    assert await todos.update_todo(db, bob.id, bread.id, done=True) is None
    assert await todos.delete_todo(db, bob.id, bread.id) is False
    assert await todos.delete_todo(db, alice.id, bread.id) is True
    assert await todos.delete_todo(db, alice.id, bread.id) is False
    assert [t.title for t in await todos.list_todos(db, alice.id)] == ["buy oat milk"]
    assert await todos.count_todos(db, bob.id) == 1


async def test_bad_fields_are_refused(db: Database) -> None:
    user = await _user(db)
    with pytest.raises(ValueError, match="priority"):
        await todos.create_todo(db, user.id, "x", priority="urgent")
    with pytest.raises(ValueError, match="title"):
        await todos.create_todo(db, user.id, "   ")
    with pytest.raises(ValueError, match="title"):
        await todos.create_todo(db, user.id, "x" * (todos.MAX_TITLE_CHARS + 1))
    assert await todos.list_todos(db, user.id) == []


async def test_phone_numbers_are_unique_and_found_in_any_spelling(db: Database) -> None:
    caller = await _user(db, phone="+1 (555) 010-2030")
    assert caller.phone == "+15550102030"
    assert (await users.get_user_by_phone(db, "+15550102030")) == caller
    assert (await users.get_user_by_phone(db, "+1 555 010 2030")) == caller
    assert await users.get_user_by_phone(db, "+15550109999") is None
    assert await users.get_user_by_phone(db, "not a number") is None
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):  # one user per number
        await _user(db, phone="+15550102030")
    other = await _user(db)  # many users without a phone
    await _user(db)
    await users.set_phone(db, other.id, "+442071838750")
    assert (await users.get_user_by_phone(db, "+442071838750")) is not None
    with pytest.raises(ValueError):
        await users.set_phone(db, other.id, "12345")


async def test_memory_keeps_whole_turns_within_the_bound(db: Database) -> None:
    user = await _user(db)
    call = {"id": "call_1", "type": "function", "function": {"name": "list_todos", "arguments": "{}"}}
    turn_with_tools = [
        {"role": "user", "content": "what's on my list"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"ok": true, "todos": []}'},
        {"role": "assistant", "content": "Your list is empty."},
    ]
    await assistant_memory.append_messages(db, user.id, turn_with_tools, keep=6)
    assert [m.message for m in await assistant_memory.recent_messages(db, user.id, 6)] == turn_with_tools

    await assistant_memory.append_messages(
        db, user.id, [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}], keep=6
    )
    # 6 messages fit: both turns are kept.
    assert await assistant_memory.count_messages(db, user.id) == 6
    await assistant_memory.append_messages(
        db, user.id, [{"role": "user", "content": "thanks"}, {"role": "assistant", "content": "Any time."}], keep=6
    )
    # The window of the last 6 would start inside the tool turn: it starts at the next user message instead.
    kept = await assistant_memory.recent_messages(db, user.id, 6)
    assert [m.message["content"] for m in kept] == ["hi", "Hello!", "thanks", "Any time."]
    assert await assistant_memory.count_messages(db, user.id) == 4  # the rest is deleted, not just hidden
    assert [m.seq for m in kept] == sorted(m.seq for m in kept)

    # Reading with a smaller window never starts at a tool result or an assistant tool call.
    assert [m.role for m in await assistant_memory.recent_messages(db, user.id, 3)] == ["user", "assistant"]

    other = await _user(db)
    assert await assistant_memory.recent_messages(db, other.id, 10) == []
    await assistant_memory.forget(db, user.id)
    assert await assistant_memory.count_messages(db, user.id) == 0
