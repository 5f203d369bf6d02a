"""AssistantFeature from settings: starts with or without a model, and falls back to the OpenAI settings."""

from __future__ import annotations

import pytest

from fakes import FakeOpenAI
from quart_app.assistant.errors import AssistantUnavailable, SpeechFailed
from quart_app.assistant.feature import AssistantFeature
from quart_app.db.handle import DatabaseHandle
from quart_app.providers.registry import build_providers
from quart_app.settings import Settings


async def _feature(tmp_path: object, **env: str) -> tuple[AssistantFeature, DatabaseHandle]:
    settings = Settings.from_env({"APP_ENV": "test", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/f.db", **env})
    handle = DatabaseHandle(settings.database_url)
    handle.open_in_background()
    assert await handle.wait_ready(20)
    feature = AssistantFeature.build(settings, handle, build_providers(settings))
    await feature.start()
    return feature, handle


async def test_without_any_model_it_starts_and_explains(tmp_path: object) -> None:
    feature, handle = await _feature(tmp_path)
    try:
        from quart_app.db import users

        user = await users.create_user(handle.get(), email="a@example.test")
        with pytest.raises(AssistantUnavailable) as info:
            await feature.assistant.respond(user.id, "add buy milk")
        assert "not set up" in info.value.message
        with pytest.raises(SpeechFailed):
            await feature.speech.synthesize("hi")
        # The list itself works without any model.
        await feature.todos.add(user.id, "buy milk")
        assert [t.title for t in await feature.todos.list(user.id)] == ["buy milk"]
    finally:
        await feature.stop()
        await handle.close()


async def test_the_assistant_model_falls_back_to_the_openai_settings(tmp_path: object, openai_fake: FakeOpenAI) -> None:
    feature, handle = await _feature(
        tmp_path, OPENAI_API_KEY=openai_fake.api_key, OPENAI_BASE_URL=openai_fake.base_url + "/v1"
    )
    try:
        from quart_app.db import users

        user = await users.create_user(handle.get(), email="a@example.test")
        reply = await feature.assistant.respond(user.id, "add buy milk")
        assert reply.todos_changed and [t.title for t in reply.todos] == ["buy milk"]
        audio, mime = await feature.speech.synthesize(reply.text)
        assert mime == "audio/mpeg" and audio
    finally:
        await feature.stop()
        await handle.close()


def test_assistant_settings_override_the_openai_ones() -> None:
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": "sk-openai",
            "OPENAI_BASE_URL": "https://api.openai.com/v1",
            "ASSISTANT_LLM_BASE_URL": "https://api.sambanova.ai/v1/",
            "ASSISTANT_LLM_API_KEY": "samba-secret-key",
            "ASSISTANT_LLM_MODEL": "Meta-Llama-3.3-70B-Instruct",
        }
    )
    assert settings.assistant_llm_url == "https://api.sambanova.ai/v1"
    assert settings.assistant_llm_secret is not None
    assert settings.assistant_llm_secret.get_secret_value() == "samba-secret-key"
    assert "samba-secret-key" not in repr(settings)
    only_openai = Settings.from_env({"OPENAI_API_KEY": "sk-openai"})
    assert only_openai.assistant_llm_url is None
    assert only_openai.assistant_llm_secret is not None
    assert only_openai.assistant_llm_secret.get_secret_value() == "sk-openai"
