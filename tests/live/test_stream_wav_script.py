"""scripts/stream_wav.py, the README's one-liner, over both front ends (as fast as possible: --speed 0)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from fakes import FakeDeepgram
from tests.live.support import TEXT, serve_live
from tests.support.live_audio import WORD_GAP, spoken_wav_path
from tests.support.users import make_user

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "stream_wav.py"


@pytest.mark.parametrize("front_end", [[], ["--socketio"]], ids=["websocket", "socketio"])
async def test_the_script_streams_a_wav_and_prints_the_words(
    front_end: list[str], fake: FakeDeepgram, tmp_path: Path
) -> None:
    wav = spoken_wav_path(TEXT, WORD_GAP)  # espeak-ng's 22.05 kHz WAV, streamed as linear16 at that rate
    fake.register_live_words(wav.read_bytes(), TEXT)
    async with serve_live(tmp_path, fake) as (app, port):
        _user, key = await make_user(app)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            str(wav),
            "--url",
            f"http://127.0.0.1:{port}",
            "--key",
            key,
            "--speed",
            "0",
            "--lang",
            "en",
            *front_end,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    output = stdout.decode()
    assert proc.returncode == 0, output + stderr.decode()
    lines = output.strip().splitlines()
    assert lines[-1] == TEXT
    assert lines[-2].startswith("stopped: ") and "transcription trn_" in lines[-2]
    assert [line.split("] ", 1)[1] for line in lines[:-2]] == TEXT.split()
    assert fake.live_connection().param("sample_rate") == "22050"


async def test_the_script_says_why_a_start_is_refused(tmp_path: Path) -> None:
    async with serve_live(tmp_path, None) as (app, port):
        _user, key = await make_user(app)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            str(spoken_wav_path(TEXT, WORD_GAP)),
            "--url",
            f"http://127.0.0.1:{port}",
            "--key",
            key,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert stdout.decode().startswith("error provider_unconfigured: deepgram is not configured")
