"""What the transcription and translation providers hand back to the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..db.transcriptions import Segment
from ..media.uploads import AudioUpload


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
