"""FakeDeepgram driven through deepgram-sdk 7 with a custom environment."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from aiohttp import web
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.errors import BadRequestError

from fakes import FakeDeepgram, FakeService, run_fake, sine_wav
from fakes.deepgram import environment


def client(fake: FakeDeepgram, api_key: str | None = None) -> AsyncDeepgramClient:
    return AsyncDeepgramClient(api_key=api_key or fake.api_key, environment=environment(fake.base_url), max_retries=0)


async def test_prerecorded_bytes_with_smart_format(deepgram_fake, wav):
    deepgram_fake.register_transcript(wav, "Hello, world.")
    response = await client(deepgram_fake).listen.v1.media.transcribe_file(
        request=wav, model="nova-3", smart_format=True, language="en", detect_language=True
    )
    channel = response.results.channels[0]
    alternative = channel.alternatives[0]
    assert alternative.transcript == "Hello, world."
    assert [w.word for w in alternative.words] == ["hello", "world"]
    assert alternative.words[-1].end == pytest.approx(0.5)
    assert alternative.words[0].model_extra["punctuated_word"] == "Hello,"
    assert channel.detected_language == "en"
    assert response.metadata.duration == pytest.approx(0.5) and response.metadata.channels == 1
    model_uuid = response.metadata.models[0]
    assert response.metadata.model_info[model_uuid]["arch"] == "nova-3"
    request = deepgram_fake.requests[-1]
    assert request.header("Authorization") == f"Token {deepgram_fake.api_key}"
    assert request.param("model") == "nova-3" and request.param("smart_format") == "true"
    assert request.body_size == len(wav)


async def test_without_punctuation_transcript_is_lowercase_words(deepgram_fake, wav):
    deepgram_fake.register_transcript(wav, "Hello, world.")
    response = await client(deepgram_fake).listen.v1.media.transcribe_file(request=wav, model="nova-2")
    alternative = response.results.channels[0].alternatives[0]
    assert alternative.transcript == "hello world"
    assert "punctuated_word" not in (alternative.words[0].model_extra or {})


async def test_unregistered_audio_is_marked_fake(deepgram_fake):
    response = await client(deepgram_fake).listen.v1.media.transcribe_file(
        request=sine_wav(1.0), punctuate=True, utterances=True
    )
    assert response.results.channels[0].alternatives[0].transcript.startswith("Fake transcript")
    assert response.results.utterances[0].end == pytest.approx(1.0)


async def test_bearer_token_is_accepted(deepgram_fake, wav):
    access = AsyncDeepgramClient(access_token=deepgram_fake.api_key, environment=environment(deepgram_fake.base_url))
    response = await access.listen.v1.media.transcribe_file(request=wav)
    assert response.results.channels[0].alternatives[0].transcript
    assert deepgram_fake.requests[-1].header("Authorization").lower().startswith("bearer ")


async def test_bad_key_is_invalid_auth(deepgram_fake, wav):
    with pytest.raises(ApiError) as caught:
        await client(deepgram_fake, api_key="wrong").listen.v1.media.transcribe_file(request=wav)
    assert caught.value.status_code == 401
    assert caught.value.body["err_code"] == "INVALID_AUTH" and caught.value.body["err_msg"] == "Invalid credentials."
    assert caught.value.body["request_id"]


async def test_corrupt_audio_is_bad_request(deepgram_fake):
    with pytest.raises(BadRequestError) as caught:
        await client(deepgram_fake).listen.v1.media.transcribe_file(request=b"definitely not audio" * 20)
    assert caught.value.body["err_msg"] == "Bad Request: failed to process audio: corrupt or unsupported data"


async def test_raw_linear16_needs_sample_rate(deepgram_fake):
    pcm = b"\0\0" * 8000
    api = client(deepgram_fake)
    with pytest.raises(BadRequestError):
        await api.listen.v1.media.transcribe_file(request=pcm, encoding="linear16")
    # sample_rate is not a transcribe_file argument in SDK 7; it travels as an extra query parameter.
    response = await api.listen.v1.media.transcribe_file(
        request=pcm, encoding="linear16", request_options={"additional_query_parameters": {"sample_rate": 16000}}
    )
    assert response.metadata.duration == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (402, "ASR_PAYMENT_REQUIRED"),
        (429, "TOO_MANY_REQUESTS"),
        (500, "INTERNAL_SERVER_ERROR"),
        (503, "SERVICE_UNAVAILABLE"),
    ],
)
async def test_injected_errors_surface_as_api_error(deepgram_fake, wav, status, code):
    deepgram_fake.fail_next(status)
    with pytest.raises(ApiError) as caught:
        await client(deepgram_fake).listen.v1.media.transcribe_file(request=wav)
    assert caught.value.status_code == status and caught.value.body["err_code"] == code


async def test_sdk_retries_injected_503_by_default(deepgram_fake, wav):
    deepgram_fake.fail_next(503, headers={"retry-after": "0"})
    api = AsyncDeepgramClient(api_key=deepgram_fake.api_key, environment=environment(deepgram_fake.base_url))
    response = await api.listen.v1.media.transcribe_file(request=wav)
    assert response.results.channels[0].alternatives[0].transcript
    assert [r.status for r in deepgram_fake.requests] == [503, 200]


async def test_hang_hits_the_sdk_timeout(deepgram_fake, wav):
    deepgram_fake.hang_next(5)
    api = AsyncDeepgramClient(
        api_key=deepgram_fake.api_key, environment=environment(deepgram_fake.base_url), max_retries=0, timeout=0.3
    )
    with pytest.raises(Exception) as caught:  # httpx's ReadTimeout; the SDK does not wrap it
        await api.listen.v1.media.transcribe_file(request=wav)
    assert "Timeout" in type(caught.value).__name__


async def test_url_source_registered_and_unfetchable(deepgram_fake, wav):
    api = client(deepgram_fake)
    deepgram_fake.register_url("https://media.example/ok.wav", wav)
    deepgram_fake.register_transcript(wav, "From a URL.")
    response = await api.listen.v1.media.transcribe_url(url="https://media.example/ok.wav", punctuate=True)
    assert response.results.channels[0].alternatives[0].transcript == "From a URL."
    with pytest.raises(BadRequestError) as caught:
        await api.listen.v1.media.transcribe_url(url="https://media.example/missing.wav")
    assert caught.value.body["err_code"] == "REMOTE_CONTENT_ERROR"


class _CallbackReceiver(FakeService):
    """Stands in for the service's Deepgram callback endpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict] = []

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.post("/dg", self.handle)]

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.Response(text="ok")


async def test_callback_gets_the_result_posted(deepgram_fake, wav):
    async with run_fake(_CallbackReceiver()) as receiver:
        response = await client(deepgram_fake).listen.v1.media.transcribe_file(
            request=wav, callback=receiver.base_url + "/dg"
        )
        for _ in range(100):
            if deepgram_fake.callbacks:
                break
            await asyncio.sleep(0.02)
    assert response.request_id == receiver.received[0]["metadata"]["request_id"]
    assert deepgram_fake.callbacks[0][1] == 200
    assert receiver.requests[0].header("dg-token") == deepgram_fake.api_key


async def test_readme_recipe_with_explicit_environment(deepgram_fake, wav):
    from deepgram.environment import DeepgramClientEnvironment

    base = deepgram_fake.base_url
    ws = base.replace("http", "ws", 1)
    api = AsyncDeepgramClient(
        api_key=deepgram_fake.api_key,
        max_retries=0,
        environment=DeepgramClientEnvironment(base=base, production=ws, agent=ws, agent_rest=base),
    )
    response = await api.listen.v1.media.transcribe_file(request=wav, model="nova-3")
    assert deepgram_fake.requests[-1].header("x-deepgram-session-id")
    assert deepgram_fake.requests[-1].path == "/v1/listen"
    assert response.metadata.sha256 == hashlib.sha256(wav).hexdigest()
