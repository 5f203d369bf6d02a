"""FakeOpenAI driven through the real openai SDK."""

from __future__ import annotations

import asyncio
import io
import time

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from fakes import FakeOpenAI, run_fake, sine_wav


def client(fake: FakeOpenAI, **kwargs) -> AsyncOpenAI:
    return AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url + "/v1", max_retries=0, **kwargs)


async def test_transcription_json_returns_registered_text_and_records_the_upload(openai_fake, wav):
    openai_fake.register_transcript(wav, "Hello world.")
    result = await client(openai_fake).audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", wav, "audio/wav"), language="en", prompt="greeting"
    )
    assert result.text == "Hello world."
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 1
    (request,) = openai_fake.requests_to("/v1/audio/transcriptions")
    assert request.header("Authorization") == f"Bearer {openai_fake.api_key}"
    assert request.fields["model"] == ["whisper-1"] and request.fields["language"] == ["en"]
    assert request.fields["prompt"] == ["greeting"]
    assert request.files["file"]["filename"] == "clip.wav" and request.files["file"]["size"] == len(wav)


async def test_unregistered_audio_gets_a_marked_deterministic_transcript(openai_fake, wav):
    first = await client(openai_fake).audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", wav))
    second = await client(openai_fake).audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", wav))
    assert first.text == second.text
    assert first.text.startswith("Fake transcript") and "0.50 seconds of wav" in first.text
    assert first.usage.type == "tokens"


async def test_phrases_in_turn_stand_in_for_speech_it_cannot_recognise(openai_fake, wav):
    """scripts/dev_fakes.py --phrases: unknown recordings hear the phrases in turn; registered audio still wins."""
    openai_fake.transcripts.speak_in_turn(["Add buy milk.", "What's on my list?"])
    known = sine_wav(0.7)
    openai_fake.register_transcript(known, "Registered.")
    heard = [
        (await client(openai_fake).audio.transcriptions.create(model="whisper-1", file=("a.wav", audio))).text
        for audio in (wav, known, wav, wav)
    ]
    assert heard == ["Add buy milk.", "Registered.", "What's on my list?", "Add buy milk."]


async def test_verbose_json_has_whisper_segments_and_words(openai_fake):
    audio = sine_wav(2.0)
    openai_fake.register_transcript(audio, "Good morning. How are you today?")
    result = await client(openai_fake).audio.transcriptions.create(
        model="whisper-1",
        file=("speech.wav", audio),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="es",
    )
    assert result.duration == pytest.approx(2.0) and result.language == "spanish"
    assert [s.text.strip() for s in result.segments] == ["Good morning.", "How are you today?"]
    assert result.segments[-1].end == pytest.approx(2.0)
    assert [w.word for w in result.words] == ["Good", "morning", "How", "are", "you", "today"]
    request = openai_fake.requests[-1]
    assert request.fields["timestamp_granularities[]"] == ["word", "segment"]


async def test_text_and_srt_formats_are_plain_text(openai_fake, wav):
    openai_fake.register_transcript(wav, "Hi there.")
    text = await client(openai_fake).audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav), response_format="text"
    )
    srt = await client(openai_fake).audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav), response_format="srt"
    )
    assert text.strip() == "Hi there."
    assert srt.startswith("1\n00:00:00,000 --> 00:00:00,500\nHi there.")


async def test_bad_api_key_is_authentication_error(openai_fake, wav):
    bad = AsyncOpenAI(api_key="sk-wrong-key-123456", base_url=openai_fake.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        await bad.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav))
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key" and caught.value.type == "invalid_request_error"


async def test_upload_over_the_limit_is_413(wav):
    async with run_fake(FakeOpenAI(max_request_bytes=200_000)) as fake:
        big = sine_wav(8.0)  # 256 KB
        with pytest.raises(openai.APIStatusError) as caught:
            await client(fake).audio.transcriptions.create(model="whisper-1", file=("big.wav", big))
        assert caught.value.status_code == 413
        assert "Maximum content size limit (200000) exceeded" in caught.value.message
        ok = await client(fake).audio.transcriptions.create(model="whisper-1", file=("small.wav", wav))
        assert ok.text


async def test_default_limit_is_the_real_25_mib(openai_fake, wav):
    assert openai_fake.max_request_bytes == 26_214_400
    padded = wav + b"\0" * (26_214_400 - len(wav))  # a WAV with trailing junk, just over 25 MiB with the form
    with pytest.raises(openai.APIStatusError) as caught:
        await client(openai_fake).audio.transcriptions.create(model="whisper-1", file=("big.wav", padded))
    assert caught.value.status_code == 413 and caught.value.body["type"] == "server_error"


@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("notes.txt", b"RIFF....WAVE" + b"\0" * 100, "Unrecognized file format"),
        ("clip.wav", b"just some text, not audio at all" * 10, "Invalid file format. Supported formats: ['flac'"),
        ("clip.wav", b"RIFF\x10\0\0\0WAVEjunk", "Audio file might be corrupted or unsupported"),
    ],
)
async def test_undecodable_or_unnamed_audio_is_400(openai_fake, name, data, fragment):
    with pytest.raises(openai.BadRequestError) as caught:
        await client(openai_fake).audio.transcriptions.create(model="whisper-1", file=(name, data))
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("magic", "name"),
    [
        (b"ID3\x04", "a.mp3"),
        (b"OggS", "a.ogg"),
        (b"fLaC", "a.flac"),
        (b"\x1a\x45\xdf\xa3", "a.webm"),
        (b"\0\0\0\x20ftypM4A ", "a.m4a"),
        (b"\xff\xfb\x90\x64", "a.mp3"),
    ],
)
async def test_containers_are_sniffed(openai_fake, magic, name):
    result = await client(openai_fake).audio.transcriptions.create(model="whisper-1", file=(name, magic + b"\0" * 4000))
    assert "seconds of" in result.text


async def test_gpt4o_transcribe_refuses_verbose_json(openai_fake, wav):
    with pytest.raises(openai.BadRequestError) as caught:
        await client(openai_fake).audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("a.wav", wav), response_format="verbose_json"
        )
    assert caught.value.param == "response_format"


async def test_chat_completion_translates_with_dictionary_and_fallback(openai_fake):
    api = client(openai_fake)
    known = await api.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Translate the user's text to Spanish."},
            {"role": "user", "content": "Good morning!"},
        ],
    )
    assert known.choices[0].message.content == "Buenos días!"
    assert known.choices[0].finish_reason == "stop" and known.object == "chat.completion"
    assert known.usage.total_tokens == known.usage.prompt_tokens + known.usage.completion_tokens > 0
    unknown = await api.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "[target=de] The weather is nice."}]
    )
    assert unknown.choices[0].message.content == "[de] The weather is nice."
    assert openai_fake.requests[-1].json["messages"][0]["content"] == "[target=de] The weather is nice."


async def test_chat_without_target_echoes_and_registered_reply_wins(openai_fake):
    api = client(openai_fake)
    echo = await api.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Listen to it"}])
    assert echo.choices[0].message.content == "Fake reply to: Listen to it"
    openai_fake.register_reply("weather", "Sunny.")
    reply = await api.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Weather?"}])
    assert reply.choices[0].message.content == "Sunny."


async def test_chat_streaming(openai_fake):
    stream = await client(openai_fake).chat.completions.create(
        model="gpt-4o-mini",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "system", "content": "Target language: French"}, {"role": "user", "content": "Thank you"}],
    )
    pieces, usage = [], None
    async for chunk in stream:
        pieces += [c.delta.content or "" for c in chunk.choices]
        usage = chunk.usage or usage
    assert "".join(pieces) == "Merci" and usage is not None


async def test_unknown_model_is_404_and_models_are_listed(openai_fake):
    api = client(openai_fake)
    with pytest.raises(openai.NotFoundError) as caught:
        await api.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"
    ids = [m.id async for m in api.models.list()]
    assert "whisper-1" in ids and "gpt-4o-mini" in ids


async def test_injected_429_then_500_then_success(openai_fake):
    api = client(openai_fake)
    messages = [{"role": "user", "content": "hi"}]
    openai_fake.fail_next(429)
    openai_fake.fail_next(500)
    with pytest.raises(openai.RateLimitError) as limited:
        await api.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.InternalServerError) as failed:
        await api.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert failed.value.status_code == 500 and failed.value.type == "server_error"
    ok = await api.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert ok.choices[0].message.content
    assert [r.status for r in openai_fake.requests] == [429, 500, 200]


async def test_sdk_retries_an_injected_429(openai_fake):
    openai_fake.fail_next(429, headers={"retry-after": "0", "retry-after-ms": "10"})
    api = AsyncOpenAI(api_key=openai_fake.api_key, base_url=openai_fake.base_url + "/v1", max_retries=1)
    result = await api.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert result.choices and len(openai_fake.requests) == 2


async def test_hang_times_the_client_out(openai_fake):
    openai_fake.hang_next(5)
    api = client(openai_fake, timeout=httpx.Timeout(0.3))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await api.models.list()
    assert time.monotonic() - started < 2


async def _recorded(fake: FakeOpenAI, path: str, count: int) -> None:
    """Wait until the fake has recorded `count` requests to `path` (each has then taken its fault)."""
    for _ in range(3000):
        if len(fake.requests_to(path)) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the fake never saw {count} requests to {path}")


async def test_held_requests_answer_out_of_order(openai_fake):
    # No clock: arrival order is fixed by waiting for the fake to record each request, and the answers come
    # in the order the test releases them.
    chunks = [sine_wav(0.1 * (i + 1)) for i in range(3)]
    for index, chunk in enumerate(chunks):
        openai_fake.register_transcript(chunk, f"chunk {index}")
    gates = [openai_fake.hold_next(path="/v1/audio") for _ in range(3)]
    finished: list[str] = []

    async def send(index: int) -> None:
        result = await client(openai_fake).audio.transcriptions.create(
            model="whisper-1", file=(f"{index}.wav", io.BytesIO(chunks[index]))
        )
        finished.append(result.text)

    tasks = []
    for index in range(3):
        tasks.append(asyncio.create_task(send(index)))
        await _recorded(openai_fake, "/v1/audio", index + 1)
    for index in (1, 2, 0):
        gates[index].set()
        await tasks[index]
    assert finished == ["chunk 1", "chunk 2", "chunk 0"]


async def test_delay_next_delays_each_request_by_its_own_delay(openai_fake):
    # Only lower bounds: a request delayed 0.4 s can't be answered sooner, however busy the machine is.
    openai_fake.delay_next(0.4, 0.0, path="/v1/models")
    api = client(openai_fake)
    started = time.monotonic()
    await api.models.list()
    assert time.monotonic() - started >= 0.4
    await api.models.list()  # the second delay (none) was its own, and the list of delays is used up
    await api.models.list()
    assert [r.status for r in openai_fake.requests_to("/v1/models")] == [200, 200, 200]


async def test_sdk_picks_up_the_environment_variables(openai_fake, monkeypatch, wav):
    monkeypatch.setenv("OPENAI_API_KEY", openai_fake.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_fake.base_url + "/v1")
    result = await AsyncOpenAI(max_retries=0).audio.transcriptions.create(model="whisper-1", file=("a.wav", wav))
    assert result.text.startswith("Fake transcript")
    assert openai_fake.requests[-1].path == "/v1/audio/transcriptions"
