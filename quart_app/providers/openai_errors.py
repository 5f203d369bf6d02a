"""Mapping the openai SDK's exceptions (also raised for DeepSeek) onto our API errors."""

from __future__ import annotations

import openai

from ..errors import APIError
from .errors import ProviderFailed, ProviderTimeout, sanitize

_AUDIO_HINTS = ("file format", "corrupted", "unsupported", "could not be decoded", "audio file", "decode")


def map_openai_error(provider: str, exc: Exception, timeout: float) -> APIError:
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout(provider, timeout)
    if isinstance(exc, openai.APIStatusError):
        message = _message(exc)
        if exc.status_code == 400 and any(hint in message.lower() for hint in _AUDIO_HINTS):
            # The provider could not read the audio: the caller's file is at fault, not the provider.
            return APIError(400, "undecodable_audio", f"{provider} could not decode the audio: {sanitize(message)}")
        if exc.status_code == 413:
            return APIError(413, "payload_too_large", f"{provider} rejected the file as too large.")
        return ProviderFailed(provider, exc.status_code, message)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderFailed(provider, None, "could not connect")
    return ProviderFailed(provider, None, type(exc).__name__)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return f"HTTP {exc.status_code}"
