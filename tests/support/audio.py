"""Speech fixtures made on the fly with espeak-ng and converted with ffmpeg (both Debian packages)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "artifacts" / "audio"


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is required for audio fixtures: run scripts/setup_system.sh")
    return path


@lru_cache(maxsize=32)
def spoken(text: str, fmt: str = "wav") -> bytes:
    """`text` spoken by espeak-ng, as wav (22.05 kHz mono PCM) or converted by ffmpeg to mp3/ogg/flac/webm/m4a."""
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    stem = FIXTURE_DIR / f"speech-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    wav = stem.with_suffix(".wav")
    if not wav.exists():
        subprocess.run([require_tool("espeak-ng"), "-w", str(wav), text], check=True, capture_output=True)
    if fmt == "wav":
        return wav.read_bytes()
    out = stem.with_suffix("." + fmt)
    if not out.exists():
        codec = {"mp3": ["-c:a", "libmp3lame"], "ogg": ["-c:a", "libvorbis"], "flac": ["-c:a", "flac"],
                 "webm": ["-c:a", "libopus"], "m4a": ["-c:a", "aac"]}[fmt]
        subprocess.run([require_tool("ffmpeg"), "-y", "-loglevel", "error", "-i", str(wav), *codec, str(out)],
                       check=True, capture_output=True)
    return out.read_bytes()
