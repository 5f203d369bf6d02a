"""quart_app.providers.deepgram_live against FakeDeepgram's live endpoint.

Only outcomes are asserted, never how fast they came: timeouts below are hang guards, except the connect timeout,
which is the behaviour under test and is provoked by a hang far longer than it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from fakes import FakeDeepgram, run_fake, sine_wav
from fakes.deepgram_live import NET_0001
from quart_app.providers.deepgram_live import (
    Closed,
    DeepgramLive,
    DeepgramLiveError,
    LiveEvent,
    LiveOptions,
    LiveStream,
    Metadata,
    SpeechStarted,
    Transcript,
    UtteranceEnd,
    websocket_base,
)
from tests.support.live_audio import WORD_GAP, chunks, silence, spoken_raw, spoken_wav_path

HANG_GUARD = 20.0
CHUNK = 640  # 20 ms of 16 kHz linear16
TEXT = "hello world, how are you"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDeepgram]:
    async with run_fake(FakeDeepgram()) as served:
        yield served


def live(fake: FakeDeepgram, **kwargs: float) -> DeepgramLive:
    return DeepgramLive(fake.api_key, fake.base_url, "nova-3", **kwargs)


async def stream_and_collect(stream: LiveStream, audio: bytes, *, close: bool = True) -> list[LiveEvent]:
    """Send `audio` in 20 ms chunks (then CloseStream) while collecting every event up to `Closed`."""

    async def send() -> None:
        for piece in chunks(audio, CHUNK):
            if not await stream.send_audio(piece):
                return
        if close:
            await stream.close_stream()

    sender = asyncio.create_task(send())
    events: list[LiveEvent] = []
    async with asyncio.timeout(HANG_GUARD):
        async for event in stream:
            events.append(event)
    await sender
    return events


def final_words(events: list[LiveEvent]) -> list[str]:
    return [w.punctuated_word or w.word for e in events if isinstance(e, Transcript) and e.is_final for w in e.words]


def register_speech(fake: FakeDeepgram, text: str = TEXT) -> bytes:
    fake.register_live_words(spoken_wav_path(text, WORD_GAP).read_bytes(), text)
    return spoken_raw(text, word_gap=WORD_GAP)


def test_websocket_base():
    assert websocket_base("https://api.deepgram.com/") == "wss://api.deepgram.com"
    assert websocket_base("http://127.0.0.1:8703") == "ws://127.0.0.1:8703"


async def test_spoken_wav_gives_the_registered_words(fake):
    pcm = register_speech(fake)
    options = LiveOptions(interim_results=True, punctuate=True, utterance_end_ms=1000, vad_events=True)
    async with live(fake).connect(options) as stream:
        events = await stream_and_collect(stream, pcm + silence(1.2))
    transcripts = [e for e in events if isinstance(e, Transcript)]
    finals = [t for t in transcripts if t.is_final and t.text]
    assert " ".join(t.text for t in finals) == TEXT
    assert final_words(events) == TEXT.split()
    assert any(not t.is_final for t in transcripts)
    assert finals[-1].speech_final and finals[-1].confidence > 0.9
    assert finals[0].words[0].start < finals[0].words[0].end <= finals[0].end
    assert len([e for e in events if isinstance(e, SpeechStarted)]) == 5
    (utterance_end,) = [e for e in events if isinstance(e, UtteranceEnd)]
    assert utterance_end.last_word_end == pytest.approx(finals[-1].words[-1].end)
    metadata, closed = events[-2:]
    assert isinstance(metadata, Metadata) and metadata.request_id == fake.live_connection().request_id
    assert metadata.duration == pytest.approx((len(pcm) + 38400) / 32000, abs=1e-3)
    assert closed == Closed(1000, "", clean=True)
    assert stream.closed == closed and stream.bytes_sent == len(pcm) + 38400
    record = fake.live_connection()
    assert record.param("model") == "nova-3" and record.param("encoding") == "linear16"
    assert record.param("sample_rate") == "16000" and record.param("utterance_end_ms") == "1000"
    assert record.param("smart_format") is None and record.param("endpointing") is None


async def test_telephony_mulaw_gives_the_registered_words(fake):
    register_speech(fake)
    audio = spoken_raw(TEXT, rate=8000, encoding="mulaw", word_gap=WORD_GAP)
    options = LiveOptions(encoding="mulaw", sample_rate=8000, language="en-US", interim_results=False)
    async with live(fake).connect(options) as stream:
        events = await stream_and_collect(stream, audio + silence(0.3, rate=8000, encoding="mulaw"))
    assert final_words(events) == TEXT.split()
    assert all(e.is_final for e in events if isinstance(e, Transcript))
    assert fake.live_connection().param("language") == "en-US"


async def test_drop_surfaces_as_closed_and_a_replay_gives_the_missing_words(fake):
    pcm = register_speech(fake)
    fake.live_drop_next(after_bytes=len(pcm) // 2)
    client = live(fake)
    async with client.connect() as stream:
        first = await stream_and_collect(stream, pcm + silence(0.3))
        assert await stream.send_audio(b"\0" * CHUNK) is False
        assert await stream.keep_alive() is False
    assert first[-1] == Closed(1006, "connection lost without a close frame", clean=False)
    heard = [e for e in first if isinstance(e, Transcript) and e.is_final]
    resume_at = heard[-1].end if heard else 0.0  # audio up to here is confirmed; replay the rest
    offset = int(resume_at * 16000) * 2
    async with client.connect() as stream:
        second = await stream_and_collect(stream, (pcm + silence(0.3))[offset:])
    assert second[-1] == Closed(1000, "", clean=True)
    assert final_words(first) + final_words(second) == TEXT.split()
    replayed = [e for e in second if isinstance(e, Transcript) and e.is_final and e.words]
    original_start = [start for start, _end, _words in fake.live_spans(pcm)][len(final_words(first))]
    assert replayed[0].words[0].start == pytest.approx(original_start - resume_at, abs=0.03)
    assert [r.closed_by for r in await fake.wait_live_closed(2)] == ["drop", "server"]


async def test_error_close_and_idle_close_are_unclean(fake):
    fake.live_fail_next(1011, "upstream went away", after_bytes=6400)
    async with live(fake).connect() as stream:
        events = await stream_and_collect(stream, sine_wav(1.0)[44:], close=False)
    assert events[-1] == Closed(1011, "upstream went away", clean=False)
    fake.idle_timeout_s = 0.3
    async with live(fake).connect() as stream:
        events = await stream_and_collect(stream, b"", close=False)
    assert events == [Closed(1011, NET_0001, clean=False)]


async def test_keep_alive_and_finalize(fake):
    fake.idle_timeout_s = 1.0
    async with live(fake).connect() as stream:
        assert await stream.send_audio(sine_wav(0.4)[44:])
        assert await stream.finalize()
        flushed = None
        async with asyncio.timeout(HANG_GUARD):
            async for event in stream:
                if isinstance(event, Transcript) and event.from_finalize:
                    flushed = event
                    break
        assert flushed is not None and flushed.is_final and flushed.text.startswith("word")
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.6  # past the 1 s idle timeout
        while loop.time() < until:
            assert await stream.keep_alive()
            await asyncio.sleep(0.05)
        assert stream.closed is None
        assert await stream.close_stream()
        rest = [event async for event in stream]
    assert isinstance(rest[-2], Metadata) and rest[-1].clean
    assert fake.live_connection().control_types.count("KeepAlive") >= 10


async def test_leaving_the_block_closes_normally_and_events_end(fake):
    async with live(fake).connect() as stream:
        assert await stream.send_audio(b"\0" * CHUNK)
        assert await stream.send_audio(b"")  # never sent: an empty frame would end the stream
    assert stream.closed is not None and stream.closed.clean
    assert await stream.send_audio(b"\0" * CHUNK) is False
    assert [e async for e in stream] == [stream.closed]
    assert [e async for e in stream] == []
    record = (await fake.wait_live_closed())[0]
    assert record.closed_by == "client" and record.close_code == 1000 and record.bytes_received == CHUNK


async def test_bad_key_and_bad_options_fail_to_open(fake):
    with pytest.raises(DeepgramLiveError) as caught:
        async with DeepgramLive("wrong", fake.base_url).connect():
            pass
    assert caught.value.status_code == 401 and not caught.value.retryable
    with pytest.raises(DeepgramLiveError) as caught:
        async with live(fake).connect(LiveOptions(encoding="wav9")):
            pass
    assert caught.value.status_code == 400 and "encoding" in caught.value.message


async def test_unreachable_and_hanging_upstreams_fail_to_open(fake):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(DeepgramLiveError) as caught:
        async with DeepgramLive("key", f"http://127.0.0.1:{closed_port}").connect():
            pass
    assert caught.value.status_code is None and caught.value.retryable
    held = fake.hold_next(path="/v1/listen")  # the upgrade is not answered until released
    with pytest.raises(DeepgramLiveError) as caught:
        async with live(fake, connect_timeout=0.3).connect():
            pass
    held.set()
    assert caught.value.retryable and "0.3s" in caught.value.message
