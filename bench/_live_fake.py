"""FakeDeepgram's live endpoint for the live_streams benchmark, in a process of its own, with cheap ears.

    python -m bench._live_fake --port 8799      # prints "ready http://127.0.0.1:8799" once serving

The wire protocol is the fake's own (upgrade auth, KeepAlive/Finalize/CloseStream, Metadata, close codes, the
same per-connection records); only the hearing is replaced: instead of filtering every sample in Python (about
a microsecond each, far too slow for 500 streams) it counts the bytes and sends one final `Results` word per
second of linear16 audio, so the service still relays results, confirms its replay buffer and saves text.

`GET /__bench/live` answers a summary of every live connection (bytes and messages received, results sent,
close code); `POST /__bench/reset` forgets them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from fakes import FakeDeepgram, start_fake  # noqa: E402 - after the path fix for `python bench/_live_fake.py`
from fakes import deepgram_live as live  # noqa: E402


async def _counting_audio(self: Any, data: bytes) -> None:
    """One final one-word result per second of audio (linear16 at the connection's rate), no signal processing."""
    pcm = self.options.pcm
    rate = (pcm.sample_rate * pcm.block) if pcm is not None else 32000
    heard = getattr(self, "bench_bytes", 0) + len(data)
    self.bench_bytes = heard
    said = getattr(self, "bench_said", 0)
    while heard - said >= rate:
        start = said / rate
        said += rate
        words = self._timed_words([f"second{int(start) + 1}"], start, start + 1.0, 0.99)
        await self._send(
            self._results(start, start + 1.0, words, is_final=True, speech_final=True, from_finalize=False)
        )
    self.bench_said = said
    with self.fake._lock:
        self.record.audio_seconds = round(heard / rate, 6)


def _summary(fake: FakeDeepgram) -> list[dict[str, Any]]:
    with fake._lock:
        records = list(fake._live_records)
        return [
            {
                "index": r.index,
                "status": r.status,
                "bytes": r.bytes_received,
                "messages": r.audio_messages,
                "results": sum(1 for m in r.sent if m.get("type") == "Results"),
                "control": len(r.control),
                "close_code": r.close_code,
                "closed_by": r.closed_by,
                "open": r.closed_at is None,
            }
            for r in records
        ]


class BenchFakeDeepgram(FakeDeepgram):
    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            *super().routes(),
            web.get("/__bench/live", self.bench_live),
            web.post("/__bench/reset", self.bench_reset),
        ]

    async def bench_live(self, request: web.Request) -> web.Response:
        return web.json_response(_summary(self))

    async def bench_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


async def serve(port: int, api_key: str) -> None:
    live._Stream._audio = _counting_audio  # type: ignore[method-assign]
    fake = BenchFakeDeepgram(api_key=api_key)
    runner = await start_fake(fake, "127.0.0.1", port)
    print(f"ready {fake.base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", default="bench-deepgram-key")
    args = parser.parse_args()
    try:
        with harness.uvloop_policy():  # the servers run on uvloop; the fake must not be the slowest loop
            asyncio.run(serve(args.port, args.api_key))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
