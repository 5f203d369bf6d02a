"""Audio the fakes can reason about: container sniffing, duration, and deterministic transcripts.

The fakes do no speech recognition. A transcript is either one a test registered for those exact bytes
(by SHA-256) or a clearly fake sentence derived from the audio's hash, format and duration.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import shutil
import struct
import threading
import wave

# The formats OpenAI lists in its "Invalid file format" error, in its order.
OPENAI_FORMATS = ["flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"]

LANGUAGE_NAMES = {
    "en": "english",
    "es": "spanish",
    "fr": "french",
    "de": "german",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
    "ja": "japanese",
    "zh": "chinese",
    "ru": "russian",
    "ar": "arabic",
    "hi": "hindi",
}

# Rough bytes per second when nothing better is known (128 kbit/s lossy, ~400 kbit/s FLAC).
_BYTES_PER_SECOND = {"flac": 50_000}
_DEFAULT_BYTES_PER_SECOND = 16_000


class CorruptAudio(ValueError):
    """The bytes claim a known container but cannot be decoded."""


def sniff_format(data: bytes) -> str | None:
    """The container of `data` from its magic bytes: wav, mp3, ogg, flac, webm, m4a, mp4; None if unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3":
        return "mp3"
    # MPEG audio frame sync: 11 set bits; layer bits 00 would be AAC ADTS, which is not MP3.
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and data[1] & 0x06:
        return "mp3"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        return "m4a" if brand.startswith(b"M4A") else "mp4"
    return None


def wav_duration(data: bytes) -> float:
    """Seconds of audio in a RIFF/WAVE file, from its fmt and data chunks (any sample format)."""
    offset, byte_rate, data_size = 12, 0, None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        body = offset + 8
        if chunk_id == b"fmt " and size >= 16 and body + 16 <= len(data):
            byte_rate = struct.unpack("<I", data[body + 8 : body + 12])[0]
        elif chunk_id == b"data":
            # Streamed WAVs write 0 or 0xFFFFFFFF as the data size; trust what actually arrived.
            data_size = min(size, len(data) - body) if size not in (0, 0xFFFFFFFF) else len(data) - body
            break
        offset = body + size + (size & 1)  # chunks are padded to even sizes
    if not byte_rate or data_size is None:
        raise CorruptAudio("RIFF/WAVE without a usable fmt or data chunk")
    return data_size / byte_rate


def _ffprobe_duration(data: bytes) -> float | None:
    """From a seekable copy, as the real services decode it: through a pipe ffprobe cannot tell an Ogg Opus
    stream's length (it is in the last page's granule position)."""
    import subprocess
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(prefix="fake-audio-") as copy:
            copy.write(data)
            copy.flush()
            result = subprocess.run(
                ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", "-i", copy.name],
                capture_output=True,
                timeout=10,
                check=False,
            )
        return float(result.stdout.strip() or b"nan") if result.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def probe(data: bytes) -> tuple[str, float]:
    """(format, duration in seconds) of `data`.

    Raises CorruptAudio when a known container cannot be decoded, plain ValueError when it is unknown.
    """
    fmt = sniff_format(data)
    if fmt is None:
        raise ValueError("unsupported audio format")
    if fmt == "wav":
        return fmt, wav_duration(data)
    if len(data) < 64:
        raise CorruptAudio(f"{fmt} data too short to hold a frame")
    duration = _ffprobe_duration(data) if shutil.which("ffprobe") else None
    if duration is None or math.isnan(duration):
        duration = len(data) / _BYTES_PER_SECOND.get(fmt, _DEFAULT_BYTES_PER_SECOND)
    return fmt, duration


async def probe_async(data: bytes) -> tuple[str, float]:
    """`probe` off the event loop (ffprobe may run)."""
    return await asyncio.to_thread(probe, data)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TranscriptRegistry:
    """Transcripts tests registered for exact audio bytes, keyed by SHA-256."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._texts: dict[str, str] = {}
        self._phrases: list[str] = []
        self._next_phrase = 0

    def speak_in_turn(self, phrases: list[str]) -> None:
        """Unregistered audio transcribes to these phrases in turn (cycling) instead of a visibly fake text: the
        fake cannot recognise speech, so a person trying the voice assistant with the fakes gets a plausible
        request for each recording (`scripts/dev_fakes.py --phrases`)."""
        with self._lock:
            self._phrases = [p for p in phrases if p.strip()]
            self._next_phrase = 0

    def register(self, audio_or_sha256: bytes | str, text: str) -> str:
        """Make `text` the transcript of these bytes (or of this hex SHA-256); returns the key."""
        key = sha256_hex(audio_or_sha256) if isinstance(audio_or_sha256, bytes) else audio_or_sha256.lower()
        with self._lock:
            self._texts[key] = text
        return key

    def lookup(self, data: bytes) -> str | None:
        with self._lock:
            return self._texts.get(sha256_hex(data))

    def transcript_for(self, data: bytes, fmt: str, duration: float) -> str:
        """The registered transcript, else a deterministic, visibly fake one."""
        registered = self.lookup(data)
        if registered is not None:
            return registered
        with self._lock:
            if self._phrases:
                phrase = self._phrases[self._next_phrase % len(self._phrases)]
                self._next_phrase += 1
                return phrase
        return f"Fake transcript {sha256_hex(data)[:8]} of {duration:.2f} seconds of {fmt} audio."


def sine_wav(seconds: float = 1.0, *, rate: int = 16_000, freq: float = 440.0, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV holding a sine tone: a small, valid audio fixture for tests."""
    frames = int(seconds * rate)
    samples = bytearray()
    for i in range(frames):
        value = int(12_000 * math.sin(2 * math.pi * freq * i / rate))
        samples += struct.pack("<h", value) * channels
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(samples))
    return buffer.getvalue()
