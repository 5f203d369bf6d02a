"""Speech for the live (streaming) tests: espeak-ng WAVs turned by sox into the raw audio a live client streams."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from tests.support.audio import FIXTURE_DIR, require_tool, spoken_path

# espeak-ng's `-g 20` leaves ~200 ms between words, so the live fake hears one span per word.
WORD_GAP = 20


def spoken_wav_path(text: str, word_gap: int | None = None) -> Path:
    """espeak-ng's WAV (22.05 kHz mono) of `text`; `word_gap` is espeak-ng's `-g` (10 ms units) between words."""
    if word_gap is None:
        return spoken_path(text)
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{text}|g{word_gap}".encode()).hexdigest()[:16]
    wav = FIXTURE_DIR / f"speech-{key}-g{word_gap}.wav"
    if not wav.exists():
        partial = wav.with_suffix(".partial.wav")
        subprocess.run(
            [require_tool("espeak-ng"), "-g", str(word_gap), "-w", str(partial), text], check=True, capture_output=True
        )
        partial.replace(wav)
    return wav


@lru_cache(maxsize=32)
def spoken_raw(text: str, *, rate: int = 16_000, encoding: str = "linear16", word_gap: int | None = None) -> bytes:
    """`text` as headerless mono audio: `linear16` (16-bit little-endian) or `mulaw`, at `rate` Hz."""
    sox_encoding = {"linear16": ["-b", "16", "-e", "signed-integer"], "mulaw": ["-e", "mu-law"]}[encoding]
    result = subprocess.run(
        [
            require_tool("sox"),
            str(spoken_wav_path(text, word_gap)),
            "-r",
            str(rate),
            "-c",
            "1",
            *sox_encoding,
            "-t",
            "raw",
            "-",
        ],
        check=True,
        capture_output=True,
    )
    return result.stdout


def silence(seconds: float, *, rate: int = 16_000, encoding: str = "linear16") -> bytes:
    frames = int(seconds * rate)
    return bytes(frames * 2) if encoding == "linear16" else b"\xff" * frames


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    """`data` cut in `size`-byte pieces (the last one shorter), like a capture callback delivers it."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
