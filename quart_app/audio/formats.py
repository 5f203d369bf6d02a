"""Recognising audio containers from their first bytes, never from names or client content types."""

from __future__ import annotations

import struct
import wave
from dataclasses import dataclass
from typing import IO

SNIFF_BYTES = 64


@dataclass(frozen=True)
class AudioFormat:
    name: str  # wav, mp3, ogg, flac, webm, m4a
    mime: str
    extension: str


WAV = AudioFormat("wav", "audio/wav", "wav")
MP3 = AudioFormat("mp3", "audio/mpeg", "mp3")
OGG = AudioFormat("ogg", "audio/ogg", "ogg")
FLAC = AudioFormat("flac", "audio/flac", "flac")
WEBM = AudioFormat("webm", "audio/webm", "webm")
M4A = AudioFormat("m4a", "audio/mp4", "m4a")

SUPPORTED = (WAV, MP3, OGG, FLAC, WEBM, M4A)
SUPPORTED_NAMES = tuple(f.name for f in SUPPORTED)
_BY_EXTENSION = {
    "wav": WAV,
    "mp3": MP3,
    "mpeg": MP3,
    "ogg": OGG,
    "oga": OGG,
    "opus": OGG,
    "flac": FLAC,
    "webm": WEBM,
    "m4a": M4A,
    "mp4": M4A,
    "aac": M4A,
}
_M4A_BRANDS = (b"M4A ", b"M4B ", b"mp42", b"mp41", b"isom", b"iso2", b"dash", b"3gp4", b"3gp5", b"MSNV")


def sniff(head: bytes) -> AudioFormat | None:
    """The supported container these leading bytes belong to, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head[:4] == b"OggS":
        return OGG
    if head[:4] == b"fLaC":
        return FLAC
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska/WebM
        return WEBM
    if head[4:8] == b"ftyp" and head[8:12] in _M4A_BRANDS:
        return M4A
    if head[:3] == b"ID3":
        return MP3
    # A bare MPEG audio frame: 11 sync bits, then a layer that is not "reserved".
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0:
        return MP3
    return None


def claimed_format(filename: str | None, content_type: str | None) -> AudioFormat | None:
    """What the client says the file is; used only to word errors, never to decide the type."""
    if content_type:
        subtype = content_type.split(";")[0].strip().lower()
        for fmt in SUPPORTED:
            if subtype == fmt.mime or subtype == f"audio/{fmt.name}" or subtype == "audio/x-wav" and fmt is WAV:
                return fmt
    if filename and "." in filename:
        return _BY_EXTENSION.get(filename.rsplit(".", 1)[1].lower())
    return None


def wav_duration(stream: IO[bytes]) -> float | None:
    """Duration of a PCM WAV from its header, or None when it is not a well-formed WAV."""
    position = stream.tell()
    try:
        stream.seek(0)
        with wave.open(stream, "rb") as reader:
            frames, rate = reader.getnframes(), reader.getframerate()
            if rate <= 0:
                return None
            return frames / float(rate)
    except (wave.Error, EOFError, struct.error, ValueError):
        return None
    finally:
        stream.seek(position)


def wav_has_audio(stream: IO[bytes]) -> bool:
    """A WAV that parses and holds at least one frame."""
    duration = wav_duration(stream)
    return duration is not None and duration > 0


def read_head(stream: IO[bytes]) -> bytes:
    position = stream.tell()
    stream.seek(0)
    head = stream.read(SNIFF_BYTES)
    stream.seek(position)
    return head


__all__ = [
    "AudioFormat",
    "SUPPORTED",
    "SUPPORTED_NAMES",
    "claimed_format",
    "read_head",
    "sniff",
    "wav_duration",
    "wav_has_audio",
]
