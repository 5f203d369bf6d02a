"""The to-do tools: schemas the API accepts, and execution for the signed-in user only."""

from __future__ import annotations

import json

from quart_app.assistant.todos import TodoService
from quart_app.assistant.tools import TOOL_NAMES, TOOLS, TodoTools
from quart_app.db.users import User


def test_the_schemas_are_valid_function_tools() -> None:
    from fakes.tool_calls import check_tools  # the checks the real API makes on `tools`

    assert check_tools(TOOLS) is None
    assert TOOL_NAMES == ("add_todo", "list_todos", "complete_todo", "delete_todo", "update_todo")
    update = next(t for t in TOOLS if t["function"]["name"] == "update_todo")["function"]["parameters"]
    assert set(update["properties"]) == {"title", "new_title", "due_date", "priority"}
    assert update["properties"]["priority"]["enum"] == ["high", "medium", "low"]


async def test_each_tool_changes_only_the_signed_in_users_list(
    service: TodoService, user: User, other_user: User
) -> None:
    tools = TodoTools(service)
    added = await tools.run(user.id, "add_todo", '{"title": "Buy milk", "due_date": "tomorrow", "priority": "HIGH"}')
    assert added.changed and json.loads(added.content)["todo"] == {
        "title": "Buy milk",
        "done": False,
        "due_date": "tomorrow",
        "priority": "high",
    }
    await tools.run(other_user.id, "add_todo", {"title": "bob's thing"})

    listed = await tools.run(user.id, "list_todos", "{}")
    assert not listed.changed
    assert [t["title"] for t in json.loads(listed.content)["todos"]] == ["Buy milk"]

    completed = await tools.run(user.id, "complete_todo", '{"title": "buy MILK"}')
    assert completed.changed and json.loads(completed.content)["todo"]["done"] is True

    updated = await tools.run(
        user.id, "update_todo", '{"title": "buy milk", "new_title": "buy oat milk", "priority": "low"}'
    )
    assert json.loads(updated.content)["todo"]["title"] == "buy oat milk"
    assert json.loads(updated.content)["todo"]["priority"] == "low"

    # Another user's item is unknown here, and stays as it was.
    refused = await tools.run(user.id, "delete_todo", '{"title": "bob\'s thing"}')
    assert not refused.changed and json.loads(refused.content) == {
        "ok": False,
        "error": "there is no to-do called 'bob's thing' on the list",
    }
    assert [t.title for t in await service.list(other_user.id)] == ["bob's thing"]

    deleted = await tools.run(user.id, "delete_todo", '{"title": "Buy Oat Milk"}')
    assert deleted.changed and await service.list(user.id) == []


async def test_bad_calls_become_tool_results_not_exceptions(service: TodoService, user: User) -> None:
    tools = TodoTools(service)
    for name, arguments, wanted in [
        ("complete_todo", '{"title": "nothing"}', "no to-do called 'nothing'"),
        ("add_todo", "{not json", "not valid JSON"),
        ("add_todo", "[1]", "JSON object"),
        ("add_todo", '{"title": ""}', "title is required"),
        ("add_todo", '{"title": "x", "priority": "someday"}', "priority must be one of"),
        ("add_todo", '{"title": 5}', "expected a string"),
        ("update_todo", '{"title": "x"}', "no to-do called"),
        ("drop_tables", "{}", "no tool called drop_tables"),
    ]:
        outcome = await tools.run(user.id, name, arguments)
        body = json.loads(outcome.content)
        assert body["ok"] is False and wanted in body["error"], (name, body)
        assert not outcome.changed
    await service.add(user.id, "x")
    nothing = json.loads((await tools.run(user.id, "update_todo", '{"title": "x"}')).content)
    assert nothing["ok"] is False and "nothing to change" in nothing["error"]
    assert [t.title for t in await service.list(user.id)] == ["x"]
