"""OpenAI speech-to-text through the openai SDK's audio.transcriptions.create."""

from __future__ import annotations

from typing import Any

import openai

from ..errors import APIError
from .openai_errors import map_openai_error
from .results import AudioUpload, Segment, TranscriptResult

# OpenAI refuses request bodies over 25 MB; long media is chunked before it gets here.
MAX_FILE_BYTES = 25 * 1024 * 1024


class OpenAITranscriber:
    name = "openai"

    def __init__(self, client: openai.AsyncOpenAI, model: str, timeout: float) -> None:
        self.client = client
        self.model = model
        self.timeout = timeout

    async def transcribe(self, upload: AudioUpload, language: str | None) -> TranscriptResult:
        if upload.size > MAX_FILE_BYTES:
            raise APIError(
                413,
                "payload_too_large",
                "OpenAI transcription accepts files up to 25 MB; use /transcriptions/deepgram or a job for "
                "longer media.",
            )
        # verbose_json carries duration and segments, but only whisper-1 offers it.
        verbose = self.model.startswith("whisper")
        kwargs: dict[str, Any] = {"model": self.model, "response_format": "verbose_json" if verbose else "json"}
        if language:
            kwargs["language"] = language
        upload.stream.seek(0)
        try:
            # The SDK streams a file object from disk; the filename's extension tells OpenAI the format.
            response = await self.client.audio.transcriptions.create(
                file=(f"audio.{upload.format.extension}", upload.stream, upload.format.mime), **kwargs
            )
        except openai.OpenAIError as exc:
            raise map_openai_error("openai", exc, self.timeout) from None
        data: dict[str, Any] = response.model_dump() if hasattr(response, "model_dump") else {"text": str(response)}
        segments = [
            Segment(start=float(s.get("start", 0.0)), end=float(s.get("end", 0.0)), text=str(s.get("text", "")).strip())
            for s in data.get("segments") or []
        ]
        duration = data.get("duration")
        return TranscriptResult(
            text=str(data.get("text", "")).strip(),
            language=_language(data.get("language")) or language,
            duration_s=float(duration) if duration is not None else upload.duration_s,
            model=self.model,
            segments=segments,
        )


_NAMES = {
    "english": "en",
    "spanish": "es",
    "french": "fr",
    "german": "de",
    "italian": "it",
    "portuguese": "pt",
    "dutch": "nl",
    "japanese": "ja",
    "chinese": "zh",
    "korean": "ko",
    "russian": "ru",
    "arabic": "ar",
}


def _language(value: Any) -> str | None:
    """verbose_json names the language in English ("english"); report ISO-639-1 like Deepgram does."""
    if not isinstance(value, str) or not value:
        return None
    return _NAMES.get(value.lower(), value.lower())
