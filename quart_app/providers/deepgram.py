"""Deepgram prerecorded transcription through deepgram-sdk, streaming the spooled file."""

from __future__ import annotations

from typing import Any

import httpx
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment

from ..errors import APIError
from .errors import ProviderFailed, ProviderTimeout
from .results import AudioUpload, Segment, TranscriptResult

DEFAULT_BASE_URL = "https://api.deepgram.com"


def build_client(api_key: str, base_url: str | None, timeout: float) -> AsyncDeepgramClient:
    base = (base_url or DEFAULT_BASE_URL).rstrip("/")
    websocket_base = "ws" + base[4:] if base.startswith("http") else base
    environment = DeepgramClientEnvironment(base=base, production=websocket_base, agent=websocket_base, agent_rest=base)
    return AsyncDeepgramClient(api_key=api_key, environment=environment, timeout=timeout, max_retries=0)


class DeepgramTranscriber:
    name = "deepgram"

    def __init__(self, client: AsyncDeepgramClient, model: str, timeout: float) -> None:
        self.client = client
        self.model = model
        self.timeout = timeout

    async def transcribe(self, upload: AudioUpload, language: str | None) -> TranscriptResult:
        options: dict[str, Any] = {"model": self.model, "smart_format": True, "punctuate": True, "utterances": True}
        if language:
            options["language"] = language
        else:
            options["detect_language"] = True
        try:
            response = await self.client.listen.v1.media.transcribe_file(request=upload.chunks(), **options)
        except ApiError as exc:
            raise _map_error(exc) from None
        except httpx.TimeoutException:
            raise ProviderTimeout("deepgram", self.timeout) from None
        except httpx.HTTPError as exc:
            raise ProviderFailed("deepgram", None, type(exc).__name__) from None
        data = response.model_dump() if hasattr(response, "model_dump") else dict(response)
        return _result(data, self.model, language)


def _result(data: dict[str, Any], model: str, language: str | None) -> TranscriptResult:
    channels = (data.get("results") or {}).get("channels") or []
    first = channels[0] if channels else {}
    alternatives = first.get("alternatives") or [{}]
    utterances = (data.get("results") or {}).get("utterances") or []
    segments = [
        Segment(start=float(u.get("start", 0)), end=float(u.get("end", 0)), text=str(u.get("transcript", "")))
        for u in utterances
    ]
    duration = (data.get("metadata") or {}).get("duration")
    return TranscriptResult(
        text=str(alternatives[0].get("transcript") or "").strip(),
        language=first.get("detected_language") or language,
        duration_s=float(duration) if duration is not None else None,
        model=model,
        segments=segments,
    )


def _map_error(exc: ApiError) -> APIError:
    body = exc.body if isinstance(exc.body, dict) else {}
    message = str(body.get("err_msg") or body.get("message") or f"HTTP {exc.status_code}")
    if exc.status_code == 400 and ("audio" in message.lower() or "corrupt" in message.lower()):
        return APIError(400, "undecodable_audio", "deepgram could not decode the audio.")
    if exc.status_code == 413:
        return APIError(413, "payload_too_large", "deepgram rejected the file as too large.")
    return ProviderFailed("deepgram", exc.status_code, message)
