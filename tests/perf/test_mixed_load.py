"""A busy minute on each database: 600 mixed requests, 50 in flight, against a live server and the fakes.

Uploads to both transcription routes, both translations, history list, search, get, delete and usage,
interleaved. Nothing may answer 5xx, and every paid result that was answered is stored with exactly
one usage row (a provider's result is never thrown away by a locked database). No timing assertion:
the figures are printed for the record, speed belongs in bench/.
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from fakes import FakeDeepgram, FakeDeepSeek, FakeOpenAI
from fakes.server import FakeServerThread
from tests.support.audio import spoken
from tests.support.live_server import ROOT, LiveServer

REQUESTS = 600
IN_FLIGHT = 50
KEY = re.compile(r"^API key \(shown only now, store it safely\): (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def fakes() -> Any:
    deepgram, openai, deepseek = FakeDeepgram(), FakeOpenAI(), FakeDeepSeek()
    with FakeServerThread(deepgram, openai, deepseek):
        yield deepgram, openai, deepseek


def _admin_key(database_url: str) -> str:
    """An API key made the way an operator makes one."""
    result = subprocess.run(
        [sys.executable, "scripts/init_db.py", "create-admin", "--email", "load@example.test"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "APP_ENV": "test", "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return KEY.findall(result.stdout)[0]


async def test_mixed_load_loses_nothing_and_answers_no_5xx(
    live_server_factory: Any, backend_env: dict[str, str], fakes: Any
) -> None:
    deepgram, openai, deepseek = fakes
    server: LiveServer = live_server_factory(
        **backend_env,
        RATE_LIMIT_PER_MINUTE="100000",
        DEEPGRAM_API_KEY=deepgram.api_key,
        DEEPGRAM_BASE_URL=deepgram.base_url,
        OPENAI_API_KEY=openai.api_key,
        OPENAI_BASE_URL=openai.base_url + "/v1",
        DEEPSEEK_API_KEY=deepseek.api_key,
        DEEPSEEK_BASE_URL=deepseek.base_url,
    )
    key = await asyncio.to_thread(_admin_key, server.env["DATABASE_URL"])
    wav = spoken("the quick brown fox")
    rng = random.Random(7)
    kinds = rng.choices(
        ["deepgram", "whisper", "openai", "deepseek", "list", "search", "get", "delete", "usage"],
        weights=[3, 3, 2, 2, 2, 1, 1, 1, 1],
        k=REQUESTS,
    )
    stored: list[str] = []
    paid: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(http: httpx.AsyncClient, kind: str) -> None:
        async with gate:
            if kind in ("deepgram", "whisper"):
                response = await http.post(f"/transcriptions/{kind}", files={"audio": ("a.wav", wav, "audio/wav")})
            elif kind in ("openai", "deepseek"):
                response = await http.post(f"/translations/{kind}", json={"text": "hello", "target_language": "es"})
            elif kind == "list":
                response = await http.get("/api/transcriptions")
            elif kind == "search":
                response = await http.get("/api/transcriptions", params={"q": "fox"})
            elif kind == "usage":
                response = await http.get("/api/usage")
            elif not stored:
                response = await http.get("/api/transcriptions", params={"limit": 1})
            elif kind == "get":
                response = await http.get(f"/api/transcriptions/{rng.choice(stored)}")
            else:
                response = await http.delete(f"/api/transcriptions/{stored.pop()}")
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            problems.append(f"{kind}: {response.status_code} {response.text[:200]}")
        if kind in ("deepgram", "whisper", "openai", "deepseek") and response.status_code == 200:
            paid["transcription" if kind in ("deepgram", "whisper") else "translation"] += 1
            if kind in ("deepgram", "whisper"):
                stored.append(response.json()["id"])

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}, timeout=120) as http:
        await asyncio.gather(*(one(http, kind) for kind in kinds))
        usage = (await http.get("/api/usage")).json()
    elapsed = time.monotonic() - started
    print(f"\n{backend_env.get('DATABASE_URL', '')[:10]}: {REQUESTS} requests in {elapsed:.1f}s, {dict(statuses)}")

    assert problems == []
    assert set(statuses) <= {200, 204, 404}, statuses  # 404: a get raced a delete of the same row
    billed: Counter[str] = Counter()
    for row in usage["services"]:
        billed[row["service"].split(".")[0]] += row["requests"]
    # Every answered paid call is billed exactly once, and nothing unanswered was billed.
    assert billed == paid
    assert "Traceback" not in server.output()
