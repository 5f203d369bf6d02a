#!/usr/bin/env python3
"""Run every provider fake on loopback ports and print the environment that points the service at them.

    python scripts/dev_fakes.py                      fixed ports 8701-8706, prints `export ...` lines
    python scripts/dev_fakes.py --port-base 0        any free ports
    python scripts/dev_fakes.py --env-file .env.fakes   also write the variables to a file

Stops cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import signal
import sys
from pathlib import Path

# Runnable as `python scripts/dev_fakes.py`: the repo root, which holds fakes/, goes on the path first.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fakes import FakeAuth0, FakeDeepgram, FakeDeepSeek, FakeOpenAI, FakeRealtime, FakeTwilio  # noqa: E402
from fakes.server import start_fake  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port-base",
        type=int,
        default=8701,
        help="Auth0 on this port, then OpenAI, Deepgram, DeepSeek, Twilio, OpenAI Realtime on the next "
        "ones; "
        "0 picks free ports (default 8701)",
    )
    parser.add_argument("--auth0-domain", default="fake-tenant.auth0.local", help="tenant domain put in `iss`")
    parser.add_argument("--auth0-audience", default="https://api.voice.local", help="API audience put in `aud`")
    parser.add_argument("--env-file", type=Path, help="also write the variables to this file (KEY=value lines)")
    parser.add_argument("--no-token", action="store_true", help="do not print a sample access token")
    parser.add_argument(
        "--phrases",
        default="Add buy milk.|What's on my list?|Mark buy milk done.",
        help="what the OpenAI fake hears in recordings it does not know, in turn, separated by | (it cannot "
        "recognise speech; try the voice assistant page with these); empty for a visibly fake transcript",
    )
    return parser.parse_args(argv)


def build_env(
    auth0: FakeAuth0,
    openai: FakeOpenAI,
    deepgram: FakeDeepgram,
    deepseek: FakeDeepSeek,
    twilio: FakeTwilio,
    realtime: FakeRealtime,
) -> dict[str, str]:
    """The service's variables for these running fakes."""
    return {
        "AUTH0_DOMAIN": auth0.domain,
        "AUTH0_AUDIENCE": auth0.audience,
        "AUTH0_BASE_URL": auth0.base_url,
        "OPENAI_API_KEY": openai.api_key,
        "OPENAI_BASE_URL": openai.base_url + "/v1",
        "DEEPGRAM_API_KEY": deepgram.api_key,
        "DEEPGRAM_BASE_URL": deepgram.base_url,
        "DEEPSEEK_API_KEY": deepseek.api_key,
        "DEEPSEEK_BASE_URL": deepseek.base_url,
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_API_BASE_URL": twilio.base_url,
        "OPENAI_REALTIME_URL": realtime.ws_url,  # the SDK's websocket_base_url; same key as OPENAI_API_KEY
    }


async def serve(args: argparse.Namespace) -> int:
    openai = FakeOpenAI()
    openai.transcripts.speak_in_turn(args.phrases.split("|"))
    fakes = (
        FakeAuth0(args.auth0_domain, args.auth0_audience),
        openai,
        FakeDeepgram(),
        FakeDeepSeek(),
        FakeTwilio(),
        FakeRealtime(api_key=openai.api_key),
    )
    runners = []
    try:
        for offset, fake in enumerate(fakes):
            port = args.port_base + offset if args.port_base else 0
            runners.append(await start_fake(fake, args.host, port))
        env = build_env(*fakes)  # type: ignore[arg-type]
        for key, value in env.items():
            print(f"export {key}={shlex.quote(value)}")
        if args.env_file:
            args.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
            print(f"# written to {args.env_file}")
        auth0 = fakes[0]
        assert isinstance(auth0, FakeAuth0)
        if not args.no_token:
            print(f"# sample access token for auth0|fake-user-1 (1 h):\n# {auth0.mint()}")
        print(
            f"# password grant: POST {auth0.base_url}/oauth/token client_id={auth0.client_id} "
            f"client_secret={auth0.client_secret} username=user@example.com password=fake-password"
        )
        print("# fakes running; Ctrl-C or SIGTERM to stop", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        print("# stopping", flush=True)
        return 0
    except OSError as exc:
        print(f"cannot start fakes: {exc}", file=sys.stderr)
        return 1
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
