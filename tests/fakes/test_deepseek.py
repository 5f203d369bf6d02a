"""FakeDeepSeek driven through the openai SDK, as DeepSeek documents."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI

MESSAGES = [{"role": "system", "content": "Translate into German."}, {"role": "user", "content": "Thank you."}]


def client(fake, suffix: str = "") -> AsyncOpenAI:
    return AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url + suffix, max_retries=0)


@pytest.mark.parametrize("suffix", ["", "/v1"])
async def test_chat_works_with_and_without_v1(deepseek_fake, suffix):
    result = await client(deepseek_fake, suffix).chat.completions.create(model="deepseek-chat", messages=MESSAGES)
    assert result.choices[0].message.content == "Danke."
    assert result.model == "deepseek-chat"
    assert result.usage.model_extra["prompt_cache_miss_tokens"] == result.usage.prompt_tokens
    assert deepseek_fake.requests[-1].path == f"{suffix}/chat/completions"


async def test_reasoner_adds_reasoning_content(deepseek_fake):
    result = await client(deepseek_fake).chat.completions.create(model="deepseek-reasoner", messages=MESSAGES)
    assert result.choices[0].message.model_extra["reasoning_content"].startswith("Fake reasoning")


async def test_bad_key_is_401_with_masked_key(deepseek_fake):
    bad = AsyncOpenAI(api_key="sk-not-the-key-9876", base_url=deepseek_fake.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        await bad.chat.completions.create(model="deepseek-chat", messages=MESSAGES)
    assert caught.value.type == "authentication_error"
    assert "****9876 is invalid" in caught.value.message


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (402, openai.APIStatusError, "Insufficient Balance"),
        (429, openai.RateLimitError, "Rate Limit Reached"),
        (500, openai.InternalServerError, "Server Error"),
        (503, openai.InternalServerError, "Server Overloaded"),
    ],
)
async def test_injected_deepseek_errors(deepseek_fake, status, error, message):
    deepseek_fake.fail_next(status)
    with pytest.raises(error) as caught:
        await client(deepseek_fake).chat.completions.create(model="deepseek-chat", messages=MESSAGES)
    assert caught.value.status_code == status and caught.value.body["message"] == message


async def test_invalid_parameters_are_422_and_unknown_model_400(deepseek_fake):
    api = client(deepseek_fake)
    with pytest.raises(openai.UnprocessableEntityError):
        await api.chat.completions.create(model="deepseek-chat", messages=MESSAGES, temperature=3)
    with pytest.raises(openai.BadRequestError) as caught:
        await api.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert caught.value.body["message"] == "Model Not Exist"


async def test_models_list(deepseek_fake):
    ids = [m.id async for m in client(deepseek_fake).models.list()]
    assert ids == ["deepseek-chat", "deepseek-reasoner"]
