"""The Dockerfile's steps, run on this machine (no container engine can pull a base image here).

Its base image's Python line, its apt packages, its pip install from the lock into a fresh environment,
and its start command with its own ENV: the service must answer the HEALTHCHECK command and /health.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    """Every `NAME ...` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line[len(name) + 1 :].strip() for line in joined.splitlines() if line.startswith(name + " ")]


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in _instructions("ENV"):
        for item in shlex.split(line):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def test_base_image_matches_the_python_we_test_on() -> None:
    (base,) = _instructions("FROM")
    match = re.match(r"python:(\d+\.\d+)-slim", base)
    assert match, base
    assert match.group(1) == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_image_runs_as_a_non_root_user_and_installs_from_the_lock() -> None:
    assert _instructions("USER") == ["app"]
    (pip,) = [run for run in _instructions("RUN") if "pip install" in run]
    assert "--require-hashes" in pip and "--no-deps" in pip and "requirements.lock" in pip
    assert (ROOT / "requirements.lock").is_file()


def test_apt_packages_are_the_tools_the_service_needs() -> None:
    (apt,) = [run for run in _instructions("RUN") if "apt-get install" in run]
    packages = {word for word in apt.split("apt-get install", 1)[1].split("&&")[0].split() if not word.startswith("-")}
    assert packages == {"ffmpeg"}
    for tool in ("ffmpeg", "ffprobe"):  # what quart_app/media runs
        assert shutil.which(tool), f"{tool} missing here: the image provides it, so must the test machine"


@pytest.mark.timeout(600)
def test_install_and_start_steps_answer_health(tmp_path: Path) -> None:
    venv = tmp_path / "image-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    (pip,) = [run for run in _instructions("RUN") if "pip install" in run]
    for step in pip.split("&&"):
        args = shlex.split(step)
        assert args[0] == "pip", step
        subprocess.run([str(python), "-m", *args], cwd=ROOT, check=True, capture_output=True, timeout=600)

    port = free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), **_env(), "PORT": str(port)}
    env.update(
        {
            "SECRET_KEY": "d" * 48,  # what Render's generateValue provides
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/image.db",
            "JOBS_DIR": str(tmp_path / "jobs"),
        }
    )
    (cmd,) = _instructions("CMD")
    command = [part.strip('" ') for part in cmd.strip("[]").split('", "')]
    assert command[:2] == ["sh", "-c"] and "--bind 0.0.0.0:${PORT}" in command[2]
    log = (tmp_path / "image.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        (check,) = _instructions("HEALTHCHECK")
        probe = [part.strip('" ') for part in check.split("CMD", 1)[1].strip().strip("[]").split('", "')]
        deadline = time.monotonic() + 120
        while subprocess.run(probe, env=env, capture_output=True).returncode != 0:
            assert server.poll() is None, (tmp_path / "image.log").read_text()
            assert time.monotonic() < deadline, "the HEALTHCHECK command never passed"
            time.sleep(0.5)
        for _ in range(240):  # the database opens in the background after boot
            response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
            if response.status_code == 200:
                break
            time.sleep(0.5)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "healthy"
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert os.path.exists(tmp_path / "image.db")
