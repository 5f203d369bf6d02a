"""REST translation against fake OpenAI and DeepSeek chat completions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fakes import FakeDeepSeek, FakeOpenAI, run_fake
from quart_app.db import usage
from tests.support.users import make_user


@pytest.fixture
async def chat_fakes() -> AsyncIterator[tuple[FakeOpenAI, FakeDeepSeek, dict[str, str]]]:
    async with (
        run_fake(FakeOpenAI(api_key="sk-test-openai")) as openai,
        run_fake(FakeDeepSeek(api_key="sk-test-deepseek")) as deepseek,
    ):
        yield (
            openai,
            deepseek,
            {
                "OPENAI_API_KEY": "sk-test-openai",
                "OPENAI_BASE_URL": openai.base_url + "/v1",
                "DEEPSEEK_API_KEY": "sk-test-deepseek",
                "DEEPSEEK_BASE_URL": deepseek.base_url,
            },
        )


@pytest.mark.parametrize("provider", ["openai", "deepseek"])
async def test_translate_store_and_meter(make_app, backend_env, chat_fakes, provider: str) -> None:
    openai, deepseek, env = chat_fakes
    async with make_app(**backend_env, **env) as (app, client):
        user, key = await make_user(app)
        response = await client.post(
            f"/translations/{provider}",
            headers={"x-api-key": key},
            json={"text": "Good morning", "target_language": "es", "source_language": "en"},
        )
        assert response.status_code == 200, await response.get_data()
        body = await response.get_json()
        assert body["translation"] == "Buenos días"
        assert body["provider"] == provider
        assert body["model"] == ("gpt-4o-mini" if provider == "openai" else "deepseek-chat")

        fake = openai if provider == "openai" else deepseek
        sent = fake.requests_to("/chat/completions" if provider == "deepseek" else "/v1/chat/completions")[-1]
        assert sent.header("Authorization") == f"Bearer sk-test-{provider}"
        assert sent.json["messages"][-1] == {"role": "user", "content": "Good morning"}

        listed = await (await client.get("/api/translations", headers={"x-api-key": key})).get_json()
        assert listed["total"] == 1 and listed["items"][0]["translation"] == "Buenos días"
        item = listed["items"][0]
        assert (await client.get(f"/api/translations/{item['id']}", headers={"x-api-key": key})).status_code == 200
        _, other = await make_user(app)
        assert (await client.get(f"/api/translations/{item['id']}", headers={"x-api-key": other})).status_code == 404

        rows = await app.extensions["resources"].db().fetch_all(usage.usage_logs.select())
        assert len(rows) == 1
        assert rows[0]["service"] == f"translation.{provider}" and rows[0]["characters"] == len("Good morning")
        assert rows[0]["user_id"] == user.id and rows[0]["cost_usd"] > 0
        monthly = await (await client.get("/api/usage", headers={"x-api-key": key})).get_json()
        assert monthly["services"][0]["characters"] == len("Good morning")

        assert (await client.delete(f"/api/translations/{item['id']}", headers={"x-api-key": key})).status_code == 204
        assert (await client.get("/api/translations", headers={"x-api-key": key})).status_code == 200


async def test_validation_errors_name_the_field(make_app, chat_fakes) -> None:
    _, _, env = chat_fakes
    async with make_app(**env) as (app, client):
        _, key = await make_user(app)
        cases = [
            ({"target_language": "es"}, "text"),
            ({"text": "hi"}, "target_language"),
            ({"text": "hi", "target_language": "not a language"}, "target_language"),
            ({"text": "x" * 20_001, "target_language": "es"}, "text"),
            ({"text": "   ", "target_language": "es"}, "text"),
        ]
        for payload, field in cases:
            response = await client.post("/translations/openai", headers={"x-api-key": key}, json=payload)
            body = await response.get_json()
            assert response.status_code == 400, body
            assert body["error"] == "validation_error" and field in body["fields"], body
        garbage = await client.post(
            "/translations/openai", headers={"x-api-key": key, "Content-Type": "application/json"}, data=b"{not json"
        )
        assert garbage.status_code == 400
        assert (await garbage.get_json())["error"] in ("bad_request", "validation_error")


async def test_provider_failures_are_not_billed(make_app, chat_fakes) -> None:
    openai, deepseek, env = chat_fakes
    async with make_app(**env, OPENAI_TIMEOUT="1") as (app, client):
        _, key = await make_user(app)
        deepseek.fail_next(402)
        deepseek.fail_next(402)
        broke = await client.post(
            "/translations/deepseek", headers={"x-api-key": key}, json={"text": "hello", "target_language": "fr"}
        )
        body = await broke.get_json()
        assert broke.status_code == 502 and body["upstream_status"] == 402 and body["provider"] == "deepseek"
        assert "Insufficient Balance" in body["message"]

        openai.hang_next(5, count=2)
        slow = await client.post(
            "/translations/openai", headers={"x-api-key": key}, json={"text": "hello", "target_language": "fr"}
        )
        assert slow.status_code == 504
        rows = await app.extensions["resources"].db().fetch_all(usage.usage_logs.select())
        assert rows == []
        listed = await (await client.get("/api/translations", headers={"x-api-key": key})).get_json()
        assert listed["total"] == 0


async def test_unconfigured_translation_is_503(make_app) -> None:
    async with make_app() as (app, client):
        _, key = await make_user(app)
        response = await client.post(
            "/translations/deepseek", headers={"x-api-key": key}, json={"text": "hello", "target_language": "fr"}
        )
        body = await response.get_json()
        assert response.status_code == 503 and body["missing"] == ["DEEPSEEK_API_KEY"]


async def test_usage_month_parameter(make_app) -> None:
    async with make_app() as (app, client):
        _, key = await make_user(app)
        bad = await client.get("/api/usage?month=2026-13", headers={"x-api-key": key})
        assert bad.status_code == 400 and "month" in (await bad.get_json())["fields"]
        bad_shape = await client.get("/api/usage?month=November", headers={"x-api-key": key})
        assert bad_shape.status_code == 400
        empty = await (await client.get("/api/usage?month=2020-01", headers={"x-api-key": key})).get_json()
        assert empty == {"month": "2020-01", "services": [], "total_cost_usd": 0.0, "total_requests": 0}
