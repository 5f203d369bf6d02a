"""The providers' interfaces and the value types they share with the services.

Plain data only: no Quart, no media tools. An `AudioUpload` is a spooled file handle whose type was
decided from its content by whoever received it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Protocol

from ..audio.formats import AudioFormat

CHUNK = 256 * 1024


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass
class AudioUpload:
    stream: IO[bytes]
    size: int
    filename: str
    format: AudioFormat
    duration_s: float | None  # known up front only for WAV

    def chunks(self) -> AsyncIterator[bytes]:
        """The file in CHUNK-sized pieces from the start (an async iterator for streaming uploads)."""

        async def iterate() -> AsyncIterator[bytes]:
            self.stream.seek(0)
            while True:
                block = self.stream.read(CHUNK)
                if not block:
                    return
                yield block

        return iterate()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stream.close()


@dataclass(frozen=True)
class TranscriptResult:
    text: str
    language: str | None
    duration_s: float | None
    model: str
    segments: list[Segment] = field(default_factory=list)


@dataclass(frozen=True)
class TranslationResult:
    translation: str
    model: str


class Transcriber(Protocol):
    name: str

    async def transcribe(self, upload: AudioUpload, language: str | None) -> TranscriptResult: ...


class Translator(Protocol):
    name: str

    async def translate(self, text: str, target: str, source: str | None) -> TranslationResult: ...
