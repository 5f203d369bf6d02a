"""Play a WAV through the whole phone path against local fakes; print the transcript and per-turn latency.

    .venv/bin/python scripts/simulate_call.py caller.wav
    .venv/bin/python scripts/simulate_call.py caller.wav --pace 0.25 --listen 3 --out heard.wav

What runs, all on this machine: FakeRealtime (the OpenAI Realtime GA API) and FakeTwilio (REST), the service
itself under hypercorn on a free loopback port (temporary SQLite database, a demo tenant with a knowledge base),
and a Twilio call: `POST /twilio/voice` signed like Twilio, then the Media Stream from the returned TwiML,
playing the WAV in 20 ms μ-law frames (`--pace 1` real time, `0.25` four times as fast). The fake transcribes
by registration (`--says "text"` registers what the caller says, one per utterance, in order) and answers each
turn with a tone and "Fake reply to: …"; an utterance containing "hours" calls `search_knowledge`, one
containing "bye" calls `end_call`.

Printed: each transcript row (call time, role, text, and for agent turns the latency from the end of the
caller's turn to the first audio), the call record (end reason, provider sessions, tokens), and what the
caller heard (`--out` writes it as a WAV). Exit code 0 when the call was relayed and recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
import tempfile
from pathlib import Path

import aiohttp
from hypercorn.asyncio import serve
from hypercorn.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fakes import FakeRealtime, FakeTwilio, TwilioMediaCall, run_fake, sign  # noqa: E402
from fakes.twilio_media import stream_from_twiml  # noqa: E402
from quart_app import create_app  # noqa: E402
from quart_app.app import asgi_application  # noqa: E402
from quart_app.db import call_transcripts, calls, knowledge, tenants  # noqa: E402
from quart_app.settings import Settings  # noqa: E402

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "simulate-call-auth-token-0123456789"
TENANT_NUMBER = "+15550100100"
CALLER = "+15550199999"
KNOWLEDGE = (
    "Opening hours\n\nAcme Plumbing is open Monday to Friday from 8 am to 6 pm, and on Saturdays from 9 am to noon.",
    "Prices\n\nA call-out costs 90 dollars; after 6 pm it costs 140 dollars.",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_port(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit("the service did not start")


async def simulate(args: argparse.Namespace, wav: bytes) -> int:
    async with (
        run_fake(FakeRealtime(reply_audio_ms=args.reply_ms, audio_pace=args.pace)) as realtime,
        run_fake(FakeTwilio(ACCOUNT_SID, AUTH_TOKEN)) as twilio,
    ):
        for text in args.says:
            realtime.register_utterance(text)
        realtime.register_tool_call("hours", "search_knowledge", {"query": "opening hours"})
        realtime.register_tool_call("bye", "end_call", {}, reply="Thanks for calling, goodbye!")
        realtime.register_reply("greet them now", "Thanks for calling Acme Plumbing, how can I help?")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings.from_env(
                {
                    "APP_ENV": "development",
                    "LOG_LEVEL": "WARNING" if not args.verbose else "INFO",
                    "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/simulate.db",
                    "PUBLIC_BASE_URL": base,
                    "OPENAI_API_KEY": realtime.api_key,
                    "OPENAI_REALTIME_URL": realtime.ws_url,
                    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                    "TWILIO_API_BASE_URL": twilio.base_url,
                    "REALTIME_MAX_SESSION_S": str(args.session_limit),
                }
            )
            app = create_app(settings)
            config = Config()
            config.bind = [f"127.0.0.1:{port}"]
            config.graceful_timeout = 1
            config.loglevel = "WARNING"
            shutdown = asyncio.Event()
            asgi = asgi_application(app)  # the app as shipped (asgi.py)
            server = asyncio.create_task(serve(asgi, config, shutdown_trigger=shutdown.wait))
            try:
                await wait_port(port)
                resources = app.extensions["resources"]
                if not await resources.database.wait_ready(20):
                    raise SystemExit("the database did not open")
                return await _call(args, app, base, twilio, wav)
            finally:
                shutdown.set()
                await asyncio.wait_for(server, 30)


async def _call(args: argparse.Namespace, app: object, base: str, twilio: FakeTwilio, wav: bytes) -> int:
    db = app.extensions["resources"].db()  # type: ignore[attr-defined]
    tenant = await tenants.create_tenant(
        db,
        name="Acme Plumbing",
        phone_numbers=[TENANT_NUMBER],
        instructions="You answer the phone for Acme Plumbing. Be brief and friendly.",
        greeting="Thanks for calling Acme Plumbing, how can I help?",
        knowledge_enabled=True,
        turn_detection={"type": "server_vad", "silence_duration_ms": 500},
    )
    for text in KNOWLEDGE:
        title, _, body = text.partition("\n\n")
        await knowledge.add_document(db, tenant_id=tenant.id, title=title, content=body, content_type="text/plain")

    record = twilio._new_call({"From": CALLER, "To": TENANT_NUMBER})
    call_sid = record["sid"]
    twilio.calls[call_sid] = record
    twilio.instructions[call_sid] = []
    twilio.set_call_status(call_sid, "in-progress")
    form = {
        "CallSid": call_sid,
        "AccountSid": ACCOUNT_SID,
        "From": CALLER,
        "To": TENANT_NUMBER,
        "CallStatus": "in-progress",
        "Direction": "inbound",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base}/twilio/voice",
            data=form,
            headers={"X-Twilio-Signature": sign(f"{base}/twilio/voice", form, AUTH_TOKEN)},
        ) as response,
    ):
        twiml = await response.text()
    found = stream_from_twiml(twiml)
    if found is None:
        print(f"the router did not connect the call:\n{twiml}")
        return 1
    url, parameters = found
    print(f"call {call_sid}: {CALLER} -> {TENANT_NUMBER} (tenant {tenant.id}), stream {url}")
    call = TwilioMediaCall(
        url,
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
        call_sid=call_sid,
        custom_parameters=parameters,
        pace=args.pace,
    )
    await call.start()
    call.follow(twilio)
    try:
        await call.play_silence(args.reply_ms / 1000 + 1.0)  # the greeting plays first
        await call.play_wav(wav)
        await call.play_silence(args.listen)
    except ConnectionError:
        pass  # the agent hung up
    finally:
        await call.hangup()
    feature_calls = next(f for f in app.extensions["features"] if hasattr(f, "calls")).calls  # type: ignore[attr-defined]
    for _ in range(200):
        if call_sid not in feature_calls:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)

    stored = await calls.get_call(db, call_sid)
    items = await call_transcripts.items_of(db, call_sid)
    print()
    print(f"{'time':>8}  {'role':<9}  {'latency':>8}  text")
    for item in items:
        latency = f"{item.latency_ms} ms" if item.latency_ms is not None else ""
        flag = " [interrupted]" if item.interrupted else ""
        print(f"{item.call_ms / 1000:7.2f}s  {item.role:<9}  {latency:>8}  {item.text}{flag}")
    latencies = [i.latency_ms for i in items if i.latency_ms is not None]
    print()
    if latencies:
        print(f"turn latency (speech_stopped -> first audio): {', '.join(f'{v} ms' for v in latencies)}")
    if stored is not None:
        print(
            f"record: end_reason={stored.end_reason} provider_sessions={stored.provider_sessions} "
            f"responses={stored.responses} tokens in/cached/out={stored.input_tokens}/{stored.cached_tokens}/"
            f"{stored.output_tokens}"
        )
    print(
        f"caller heard {call.played_total / 8000:.2f} s of agent audio in {len(call.received_media)} chunks; "
        f"{len(call.clears)} barge-in clears; sent {call.frames_sent} frames"
    )
    args.heard = call.heard_wav()
    return 0 if stored is not None and items else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("wav", help="what the caller says: a WAV of any rate, channels and PCM/float/G.711 encoding")
    parser.add_argument("--pace", type=float, default=1.0, help="1 = real time, 0.25 = four times as fast")
    parser.add_argument("--listen", type=float, default=3.0, help="seconds of silence after the WAV")
    parser.add_argument("--reply-ms", type=int, default=1500, help="length of each fake agent reply")
    parser.add_argument("--says", action="append", default=[], help="what the caller says, per utterance")
    parser.add_argument("--session-limit", type=float, default=3300, help="REALTIME_MAX_SESSION_S")
    parser.add_argument("--out", help="write what the caller heard to this WAV")
    parser.add_argument("--verbose", action="store_true", help="the service's INFO logs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    wav = Path(args.wav).read_bytes()
    code = 130
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(simulate(args, wav))
    if args.out and getattr(args, "heard", None):
        Path(args.out).write_bytes(args.heard)
        print(f"wrote what the caller heard to {args.out}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
