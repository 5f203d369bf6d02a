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


def spoken_path(text: str) -> Path:
    """The espeak-ng WAV of `text`, generated on first use."""
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    wav = FIXTURE_DIR / f"speech-{hashlib.sha256(text.encode()).hexdigest()[:16]}.wav"
    if not wav.exists():
        partial = wav.with_suffix(".partial.wav")
        subprocess.run([require_tool("espeak-ng"), "-w", str(partial), text], check=True, capture_output=True)
        partial.replace(wav)
    return wav


@lru_cache(maxsize=32)
def spoken(text: str, fmt: str = "wav") -> bytes:
    """`text` spoken by espeak-ng, as wav (22.05 kHz mono PCM) or converted by ffmpeg to mp3/ogg/flac/webm/m4a."""
    wav = spoken_path(text)
    stem = wav.with_suffix("")
    if fmt == "wav":
        return wav.read_bytes()
    out = stem.with_suffix("." + fmt)
    if not out.exists():
        codec = {
            "mp3": ["-c:a", "libmp3lame"],
            "ogg": ["-c:a", "libvorbis"],
            "flac": ["-c:a", "flac"],
            "webm": ["-c:a", "libopus"],
            "m4a": ["-c:a", "aac"],
        }[fmt]
        subprocess.run(
            [require_tool("ffmpeg"), "-y", "-loglevel", "error", "-i", str(wav), *codec, str(out)],
            check=True,
            capture_output=True,
        )
    return out.read_bytes()
