"""TodoService: one user's list, and every change reported to the subscribers with the whole list."""

from __future__ import annotations

import pytest

from quart_app.assistant.todos import TodoService
from quart_app.db.todos import Todo
from quart_app.db.users import User


async def test_every_change_notifies_subscribers_with_the_users_whole_list(
    service: TodoService, user: User, other_user: User
) -> None:
    seen: list[tuple[str, list[str], list[bool]]] = []

    async def listener(user_id: str, todos: list[Todo]) -> None:
        seen.append((user_id, [t.title for t in todos], [t.done for t in todos]))

    service.subscribe(listener)
    milk = await service.add(user.id, "buy milk", due_date="tomorrow", priority="high")
    await service.add(user.id, "call mom")
    await service.add(other_user.id, "not yours")
    assert await service.complete(user.id, milk.id) is not None
    renamed = await service.update(user.id, milk.id, title="buy oat milk", priority=None)
    assert renamed is not None and renamed.priority is None and renamed.due_date == "tomorrow" and renamed.done
    assert await service.delete(user.id, milk.id) is True

    assert seen == [
        (user.id, ["buy milk"], [False]),
        (user.id, ["buy milk", "call mom"], [False, False]),
        (other_user.id, ["not yours"], [False]),
        (user.id, ["buy milk", "call mom"], [True, False]),
        (user.id, ["buy oat milk", "call mom"], [True, False]),
        (user.id, ["call mom"], [False]),
    ]

    # No change, no notification: another user's item, a missing one.
    assert await service.delete(other_user.id, renamed.id) is False
    assert await service.update(other_user.id, renamed.id, done=True) is None
    assert len(seen) == 6

    service.unsubscribe(listener)
    await service.add(user.id, "quiet")
    assert len(seen) == 6


async def test_a_failing_subscriber_neither_undoes_nor_fails_the_change(service: TodoService, user: User) -> None:
    calls: list[str] = []

    async def broken(user_id: str, todos: list[Todo]) -> None:
        raise RuntimeError("socket gone")

    async def working(user_id: str, todos: list[Todo]) -> None:
        calls.append(user_id)

    service.subscribe(broken)
    service.subscribe(working)
    todo = await service.add(user.id, "still saved")
    assert [t.id for t in await service.list(user.id)] == [todo.id]
    assert calls == [user.id]


async def test_find_matches_titles_ignoring_case_and_spacing(
    service: TodoService, user: User, other_user: User
) -> None:
    done = await service.add(user.id, "Buy Milk")
    await service.complete(user.id, done.id)
    open_one = await service.add(user.id, "buy  milk")
    await service.add(other_user.id, "secret plan")
    found = await service.find(user.id, "  BUY milk ")
    assert found is not None and found.id == open_one.id  # an open item before a done one
    assert await service.find(user.id, "secret plan") is None  # never another user's
    assert await service.find(user.id, "bread") is None


async def test_invalid_fields_are_refused_before_anything_is_stored(service: TodoService, user: User) -> None:
    with pytest.raises(ValueError):
        await service.add(user.id, "x", priority="someday")
    with pytest.raises(ValueError):
        await service.add(user.id, "")
    assert await service.list(user.id) == []
