"""/api/todos: the voice assistant's list over REST, on both backends; changes reach the live-page listeners."""

from __future__ import annotations

from quart_app.assistant.feature import AssistantFeature
from quart_app.db.todos import Todo
from tests.support.users import make_user

OPEN = {"PIN_SIGNIN_ADDRESS_PER_MINUTE": "100000"}


async def test_crud_over_rest_notifies_listeners(make_app, backend_env) -> None:
    async with make_app(**backend_env) as (app, client):
        user, key = await make_user(app)
        headers = {"x-api-key": key}
        feature = next(f for f in app.extensions["features"] if isinstance(f, AssistantFeature))
        seen: list[tuple[str, list[str]]] = []

        async def listener(user_id: str, todos: list[Todo]) -> None:
            seen.append((user_id, [t.title for t in todos]))

        feature.todos.subscribe(listener)

        assert (await (await client.get("/api/todos", headers=headers)).get_json()) == {"items": []}
        created = await client.post(
            "/api/todos", json={"title": "  buy   milk ", "due_date": "tomorrow", "priority": "high"}, headers=headers
        )
        assert created.status_code == 201
        todo = await created.get_json()
        assert todo["title"] == "buy milk" and todo["done"] is False and todo["due_date"] == "tomorrow"
        assert todo["priority"] == "high" and todo["id"].startswith("todo_") and todo["completed_at"] is None

        patched = await client.patch(f"/api/todos/{todo['id']}", json={"done": True, "priority": None}, headers=headers)
        assert patched.status_code == 200
        body = await patched.get_json()
        assert body["done"] is True and body["priority"] is None and body["due_date"] == "tomorrow"
        assert body["completed_at"] is not None

        listed = await (await client.get("/api/todos", headers=headers)).get_json()
        assert [(i["title"], i["done"]) for i in listed["items"]] == [("buy milk", True)]

        assert (await client.delete(f"/api/todos/{todo['id']}", headers=headers)).status_code == 204
        assert (await client.delete(f"/api/todos/{todo['id']}", headers=headers)).status_code == 404
        assert seen == [(user.id, ["buy milk"]), (user.id, ["buy milk"]), (user.id, [])]


async def test_another_users_todo_is_not_found(make_app) -> None:
    async with make_app() as (app, client):
        _, alice = await make_user(app)
        _, bob = await make_user(app)
        created = await client.post("/api/todos", json={"title": "alice's"}, headers={"x-api-key": alice})
        todo_id = (await created.get_json())["id"]
        for response in (
            await client.patch(f"/api/todos/{todo_id}", json={"done": True}, headers={"x-api-key": bob}),
            await client.patch(f"/api/todos/{todo_id}", json={}, headers={"x-api-key": bob}),
            await client.delete(f"/api/todos/{todo_id}", headers={"x-api-key": bob}),
        ):
            assert response.status_code == 404
            assert (await response.get_json())["error"] == "not_found"
        assert (await (await client.get("/api/todos", headers={"x-api-key": bob})).get_json())["items"] == []
        mine = await (await client.get("/api/todos", headers={"x-api-key": alice})).get_json()
        assert [(i["title"], i["done"]) for i in mine["items"]] == [("alice's", False)]


async def test_validation(make_app) -> None:
    async with make_app() as (app, client):
        _, key = await make_user(app)
        headers = {"x-api-key": key}
        for body in (
            {},
            {"title": ""},
            {"title": "   "},
            {"title": "x" * 201},
            {"title": "ok", "priority": "urgent"},
            {"title": "ok", "due_date": "d" * 65},
            {"title": 5},
        ):
            response = await client.post("/api/todos", json=body, headers=headers)
            assert response.status_code == 400, body
            assert (await response.get_json())["error"] == "validation_error"
        created = await (await client.post("/api/todos", json={"title": "ok"}, headers=headers)).get_json()
        for body in ({"title": None}, {"done": None}, {"priority": "someday"}, {"done": "maybe"}):
            response = await client.patch(f"/api/todos/{created['id']}", json=body, headers=headers)
            assert response.status_code == 400, body
        unchanged = await (await client.get("/api/todos", headers=headers)).get_json()
        assert unchanged["items"][0]["title"] == "ok" and unchanged["items"][0]["priority"] is None


async def test_auth_is_required_and_a_pin_session_works(make_app) -> None:
    async with make_app(**OPEN) as (app, client):
        user, _ = await make_user(app, pin="482913")
        assert (await client.get("/api/todos")).status_code == 401
        assert (await client.post("/api/todos", json={"title": "x"})).status_code == 401
        assert (await client.delete("/api/todos/todo_x")).status_code == 401
        signed = await (await client.post("/api/auth/pin", json={"email": user.email, "pin": "482913"})).get_json()
        headers = {"Authorization": f"Bearer {signed['token']}"}
        assert (await client.post("/api/todos", json={"title": "by pin"}, headers=headers)).status_code == 201
        listed = await (await client.get("/api/todos", headers=headers)).get_json()
        assert [i["title"] for i in listed["items"]] == ["by pin"]


async def test_the_routes_are_in_the_openapi_document(make_app) -> None:
    async with make_app() as (app, client):
        spec = await (await client.get("/openapi.json")).get_json()
        assert set(spec["paths"]["/api/todos"]) >= {"get", "post"}
        assert set(spec["paths"]["/api/todos/{todo_id}"]) >= {"patch", "delete"}
