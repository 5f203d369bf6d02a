"""Running fakes: threaded server for sync code, and scripts/dev_fakes.py as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fakes import FakeDeepSeek, FakeOpenAI, FakeServerThread, run_fake

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "dev_fakes.py"


def test_thread_serves_several_fakes_and_stops():
    openai_fake, deepseek_fake = FakeOpenAI(api_key="k1"), FakeDeepSeek(api_key="k2")
    server = FakeServerThread(openai_fake, deepseek_fake).start()
    try:
        assert openai_fake.base_url != deepseek_fake.base_url
        ok = httpx.get(openai_fake.base_url + "/v1/models", headers={"Authorization": "Bearer k1"})
        denied = httpx.get(deepseek_fake.base_url + "/models", headers={"Authorization": "Bearer k1"})
        assert ok.status_code == 200 and denied.status_code == 401
        assert [r.status for r in openai_fake.requests] == [200]
        openai_fake.hang_next(30)  # a held request must not keep shutdown waiting
    finally:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(openai_fake.base_url + "/v1/models", headers={"Authorization": "Bearer k1"}, timeout=0.2)
        server.stop()
        assert time.monotonic() - started < 5
    with pytest.raises(httpx.ConnectError):
        httpx.get(openai_fake.base_url + "/v1/models", timeout=1)


async def test_run_fake_releases_the_port():
    async with run_fake(FakeOpenAI()) as fake:
        url = fake.base_url
        assert url.startswith("http://127.0.0.1:")
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as http:
            await http.get(url + "/v1/models")


def test_unknown_route_is_404_and_recorded():
    with FakeServerThread(FakeOpenAI()) as fake:
        response = httpx.get(fake.base_url + "/v2/nothing")
        assert response.status_code == 404
        assert fake.requests[-1].status == 404


def test_dev_fakes_help():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    assert "--env-file" in result.stdout and "--port-base" in result.stdout


def test_dev_fakes_runs_all_fakes_and_stops_on_sigterm(tmp_path):
    env_file = tmp_path / "fakes.env"
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port-base", "0", "--env-file", str(env_file), "--no-token"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "fakes running" in line or not line:
                break
        env = dict(line.strip().removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
        assert env == dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert env["OPENAI_BASE_URL"].endswith("/v1")
        assert set(env) == {
            "AUTH0_DOMAIN",
            "AUTH0_AUDIENCE",
            "AUTH0_BASE_URL",
            "OPENAI_API_KEY",
            "OPENAI_BASE_URL",
            "DEEPGRAM_API_KEY",
            "DEEPGRAM_BASE_URL",
            "DEEPSEEK_API_KEY",
            "DEEPSEEK_BASE_URL",
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "TWILIO_API_BASE_URL",
            "OPENAI_REALTIME_URL",
        }
        assert env["OPENAI_REALTIME_URL"].startswith("ws://") and env["OPENAI_REALTIME_URL"].endswith("/v1")
        models = httpx.get(
            env["OPENAI_BASE_URL"] + "/models", headers={"Authorization": f"Bearer {env['OPENAI_API_KEY']}"}
        )
        jwks = httpx.get(env["AUTH0_BASE_URL"] + "/.well-known/jwks.json")
        calls = httpx.get(
            f"{env['TWILIO_API_BASE_URL']}/2010-04-01/Accounts/{env['TWILIO_ACCOUNT_SID']}/Calls.json",
            auth=(env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"]),
        )
        assert models.status_code == jwks.status_code == calls.status_code == 200
    finally:
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(10) == 0
