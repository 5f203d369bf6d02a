"""TwilioMediaCall against a tiny local Media Streams server written here.

The call clock counts 20 ms frames; most tests drive it by hand (`pace=None` + `advance`) so every playback
and mark assertion is exact. The paced test asserts frame counts and a lower bound on wall time only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from fakes import FakeTwilio, TwilioMediaCall, g711, run_fake
from fakes.twilio_media import stream_from_twiml
from tests.support.audio import spoken

TOKEN = "media-test-auth-token-0123456789"
PUBLIC = "wss://voice.example.com/twilio/stream"
GUARD_S = 20

React = Callable[["Stream", dict[str, Any]], Awaitable[None]]


@dataclass
class Stream:
    """One WebSocket the server accepted."""

    ws: ServerConnection
    path: str
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    stream_sid: str = ""

    async def send(self, event: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"event": event, "streamSid": self.stream_sid, **fields}))

    async def media(self, payload: bytes) -> None:
        await self.send("media", media={"payload": base64.b64encode(payload).decode()})

    async def mark(self, name: str) -> None:
        await self.send("mark", mark={"name": name})

    def of(self, event: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("event") == event]


class StreamServer:
    """Stands in for the service: records everything and lets a test react to each message."""

    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self.react: React | None = None
        self.url = ""
        self.changed = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        stream = Stream(ws, ws.request.path, dict(ws.request.headers.raw_items()))
        self.streams.append(stream)
        try:
            async for raw in ws:
                message = json.loads(raw)
                stream.messages.append(message)
                if message.get("event") == "start":
                    stream.stream_sid = message["streamSid"]
                if self.react is not None:
                    await self.react(stream, message)
                self.changed.set()
        except ConnectionClosed:
            pass
        self.changed.set()

    async def wait(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(GUARD_S):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def server() -> AsyncIterator[StreamServer]:
    stream_server = StreamServer()
    async with serve(stream_server.handler, "127.0.0.1", 0) as running:
        port = running.sockets[0].getsockname()[1]
        stream_server.url = f"ws://127.0.0.1:{port}/twilio/stream"
        yield stream_server


def make_call(server: StreamServer, **options: Any) -> TwilioMediaCall:
    options.setdefault("pace", None)
    return TwilioMediaCall(server.url, auth_token=TOKEN, public_url=PUBLIC, **options)


async def test_messages_are_shaped_and_signed_like_twilio(server: StreamServer) -> None:
    wav = spoken("hello")
    call = make_call(server, custom_parameters={"tenant": "t1", "lang": "en"})
    await call.start()
    await call.play_wav(wav, wait=False)
    expected = g711.wav_to_ulaw(wav)
    frames = -(-len(expected) // 160)
    await call.advance(frames * 20 + 40)
    await call.send_dtmf("7")
    await call.hangup()
    await server.wait(lambda: bool(server.streams) and bool(server.streams[0].of("stop")))

    stream = server.streams[0]
    headers = {k.lower(): v for k, v in stream.headers.items()}
    assert stream.path == "/twilio/stream" and "origin" not in headers
    assert headers["user-agent"] == "Twilio.TmeWs/1.0"
    # signed over the stream URL as written in TwiML, with no body parameters
    assert RequestValidator(TOKEN).validate(PUBLIC, {}, headers["x-twilio-signature"])
    assert not RequestValidator(TOKEN).validate(PUBLIC.replace("wss://", "https://"), {}, headers["x-twilio-signature"])

    connected, start = stream.messages[:2]
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": call.account_sid,
            "streamSid": call.stream_sid,
            "callSid": call.call_sid,
            "tracks": ["inbound"],
            "customParameters": {"tenant": "t1", "lang": "en"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": call.stream_sid,
    }
    assert call.stream_sid.startswith("MZ") and call.call_sid.startswith("CA") and len(call.call_sid) == 34
    media = stream.of("media")
    assert len(media) == frames + 2 == call.frames_sent
    for index, message in enumerate(media):
        assert message["sequenceNumber"] == str(index + 2) and message["streamSid"] == call.stream_sid
        assert message["media"]["track"] == "inbound" and message["media"]["chunk"] == str(index + 1)
        assert message["media"]["timestamp"] == str(index * 20)
        assert len(base64.b64decode(message["media"]["payload"])) == 160
    sent = b"".join(base64.b64decode(m["media"]["payload"]) for m in media)
    assert sent[: len(expected)] == expected and set(sent[len(expected) :]) == {0xFF}  # then line silence
    dtmf, stop = stream.of("dtmf")[0], stream.of("stop")[0]
    assert dtmf == {
        "event": "dtmf",
        "sequenceNumber": str(frames + 4),
        "streamSid": call.stream_sid,
        "dtmf": {"track": "inbound_track", "digit": "7"},
    }
    assert stop == {
        "event": "stop",
        "sequenceNumber": str(frames + 5),
        "stop": {"accountSid": call.account_sid, "callSid": call.call_sid},
        "streamSid": call.stream_sid,
    }
    assert call.stream.closed_by == "twilio"


async def test_signature_scheme_can_be_https(server: StreamServer) -> None:
    call = make_call(server, signature_scheme="https")
    await call.start()
    await call.hangup()
    await server.wait(lambda: bool(server.streams))
    signature = {k.lower(): v for k, v in server.streams[0].headers.items()}["x-twilio-signature"]
    assert RequestValidator(TOKEN).validate("https://voice.example.com/twilio/stream", {}, signature)


async def test_marks_are_echoed_when_their_audio_has_played(server: StreamServer) -> None:
    async def react(stream: Stream, message: dict[str, Any]) -> None:
        if message["event"] == "start":
            await stream.mark("before-any-audio")
            await stream.media(b"\x10" * 800)  # 100 ms
            await stream.mark("a")
            await stream.media(b"\x20" * 480)  # 60 ms
            await stream.mark("b")

    server.react = react
    call = make_call(server)
    await call.start()
    await call.wait_until(lambda: len(call.marks) == 3)
    arrived = call.call_ms
    assert call.marks[0].echoed_ms == arrived  # nothing queued before it: echoed at once
    await call.advance(80)
    assert call.pending_marks == ["a", "b"]
    await call.advance(20)
    assert call.pending_marks == ["b"] and call.marks[1].echoed_ms == arrived + 100
    await call.advance(60)
    assert call.pending_marks == [] and call.marks[2].echoed_ms == arrived + 160
    await server.wait(lambda: len(server.streams[0].of("mark")) == 3)
    await call.advance(40)
    await call.hangup()

    echoes = server.streams[0].of("mark")
    assert [m["mark"]["name"] for m in echoes] == ["before-any-audio", "a", "b"]
    assert all(m["streamSid"] == call.stream_sid and m["sequenceNumber"].isdigit() for m in echoes)
    heard = call.heard_ulaw[arrived * 8 :]
    assert heard[:800] == b"\x10" * 800 and heard[800:1280] == b"\x20" * 480 and set(heard[1280:]) == {0xFF}
    assert call.played_total == 1280 and call.gaps() == [] and not call.protocol_errors
    assert [(m.call_ms, m.queued_at) for m in call.received_media] == [(arrived, 0), (arrived, 800)]


async def test_clear_drops_unplayed_audio_and_echoes_pending_marks(server: StreamServer) -> None:
    async def react(stream: Stream, message: dict[str, Any]) -> None:
        if message["event"] == "start":
            await stream.media(b"\x30" * 8000)  # one second
            await stream.mark("x")
            await stream.media(b"\x31" * 800)
            await stream.mark("y")
        elif message["event"] == "dtmf":  # the caller barged in
            await stream.send("clear")

    server.react = react
    call = make_call(server)
    await call.start()
    await call.wait_until(lambda: len(call.marks) == 2)
    await call.advance(200)
    await call.send_dtmf("1")
    await call.wait_until(lambda: bool(call.clears))
    cleared_at = call.call_ms
    await call.advance(100)
    await server.wait(lambda: len(server.streams[0].of("mark")) == 2)
    await call.hangup()

    assert call.clears[0].dropped_bytes == 8800 - 1600 and call.clears[0].marks == ["x", "y"]
    assert [(m.name, m.echoed_ms, m.cleared) for m in call.marks] == [("x", cleared_at, True), ("y", cleared_at, True)]
    assert [m["mark"]["name"] for m in server.streams[0].of("mark")] == ["x", "y"]
    assert call.played_total == 1600 and call.unplayed_bytes == 0
    assert set(call.heard_ulaw[-800:]) == {0xFF}  # silence after the clear


async def test_gaps_are_measured_on_the_call_clock(server: StreamServer) -> None:
    async def react(stream: Stream, message: dict[str, Any]) -> None:
        if message["event"] in ("start", "dtmf"):
            await stream.media(b"\x40" * 800)

    server.react = react
    call = make_call(server)
    await call.start()
    await call.wait_for_media(1)
    first = call.call_ms
    await call.advance(300)  # 100 ms of audio, then 200 ms of nothing
    await call.send_dtmf("2")
    await call.wait_for_media(2)
    second = call.call_ms
    await call.advance(200)
    await call.hangup()
    assert call.gaps() == [(first + 100, second - first - 100)] and second - first == 300
    assert len(call.received_ulaw) == 1600 and call.played_total == 1600


async def test_real_time_pacing_counted_in_frames(server: StreamServer) -> None:
    async def react(stream: Stream, message: dict[str, Any]) -> None:
        if message["event"] == "media" and message["media"]["chunk"] == "1":
            await stream.media(b"\x50" * 3200)  # 400 ms
            await stream.mark("end")

    server.react = react
    call = make_call(server, pace=0.5)  # twice real time keeps the test short; the clock logic is the same
    started = time.monotonic()
    await call.start()
    await call.play_silence(0.4)  # returns once 20 frames have gone out
    elapsed = time.monotonic() - started
    mark = await call.wait_for_mark("end")
    await call.hangup()
    await server.wait(lambda: bool(server.streams[0].of("stop")))

    assert call.frames_sent >= 20 and elapsed >= 19 * 0.02 * 0.5  # never faster than the pace
    assert mark.echoed_ms - mark.received_ms == 400  # 20 frames of playback after it arrived
    media = server.streams[0].of("media")
    frames_before_echo = [m for m in media if int(m["media"]["timestamp"]) < mark.echoed_ms]
    assert len(frames_before_echo) == mark.echoed_ms // 20  # one frame per 20 ms of call time
    assert [int(m["media"]["timestamp"]) for m in media] == list(range(0, 20 * len(media), 20))


async def test_service_hanging_up_ends_the_stream(server: StreamServer) -> None:
    async def react(stream: Stream, message: dict[str, Any]) -> None:
        if message["event"] == "media":
            await stream.ws.close(1008, "invalid X-Twilio-Signature")

    server.react = react
    call = make_call(server, pace=0.25)
    await call.start()
    with pytest.raises(ConnectionError):
        async with asyncio.timeout(GUARD_S):
            await call.play_silence(2.0)
    record = await call.wait_closed()
    await call.hangup()
    assert record.closed_by == "service" and record.close_code == 1008
    assert record.close_reason == "invalid X-Twilio-Signature"


async def test_redirect_follows_a_replaced_twiml_through_fake_twilio(server: StreamServer) -> None:
    async with run_fake(FakeTwilio(auth_token=TOKEN)) as twilio:
        async with httpx.AsyncClient(auth=(twilio.account_sid, TOKEN), base_url=twilio.base_url) as rest:
            calls = f"/2010-04-01/Accounts/{twilio.account_sid}/Calls"
            created = await rest.post(
                calls + ".json",
                data={"To": "+15550001111", "From": "+15550002222", "Url": "https://voice.example.com/twiml"},
            )
            call_sid = created.json()["sid"]
            twilio.set_call_status(call_sid, "in-progress")
            call = make_call(server, call_sid=call_sid)
            await call.start()
            call.follow(twilio)
            first_sid = call.stream_sid
            await call.advance(40)
            twiml = (
                '<Response><Connect><Stream url="wss://voice.example.com/twilio/stream/next">'
                '<Parameter name="mode" value="transfer"/></Stream></Connect></Response>'
            )
            assert (await rest.post(f"{calls}/{call_sid}.json", data={"Twiml": twiml})).status_code == 200
            await call.wait_until(lambda: len(call.streams) == 2 and call.connected)
            await call.advance(40)
            await rest.post(f"{calls}/{call_sid}.json", data={"Status": "completed"})
            await call.wait_until(lambda: call.ended)
    await server.wait(lambda: len(server.streams) == 2 and bool(server.streams[1].of("stop")))

    old, new = server.streams
    assert old.of("stop") and old.messages[-1]["event"] == "stop" and call.streams[0].closed_by == "twilio"
    assert new.path == "/twilio/stream/next" and call.stream_sid != first_sid
    start = new.of("start")[0]
    assert start["sequenceNumber"] == "1" and start["start"]["callSid"] == call_sid
    assert start["start"]["customParameters"] == {"mode": "transfer"}
    signature = {k.lower(): v for k, v in new.headers.items()}["x-twilio-signature"]
    assert RequestValidator(TOKEN).validate("wss://voice.example.com/twilio/stream/next", {}, signature)
    assert new.of("media")[0]["media"]["timestamp"] == "0"  # each stream has its own timestamps


def test_stream_from_twiml() -> None:
    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Start><Stream url="wss://x.example/s">'
        '<Parameter name="a" value="1"/><Parameter name="b" value="2"/></Stream></Start></Response>'
    )
    assert stream_from_twiml(twiml) == ("wss://x.example/s", {"a": "1", "b": "2"})
    assert stream_from_twiml("<Response><Say>Hi</Say></Response>") is None
    assert stream_from_twiml("not xml") is None
