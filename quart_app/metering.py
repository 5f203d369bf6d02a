"""Turning a successful provider call into its usage_logs row and cost."""

from __future__ import annotations

from .settings import Settings

TRANSCRIBE_PRICE = {"deepgram": "deepgram_per_minute", "openai": "openai_transcribe_per_minute"}
TRANSLATE_PRICE = {"openai": "openai_translate_per_1k_chars", "deepseek": "deepseek_translate_per_1k_chars"}


def transcription_cost(settings: Settings, provider: str, audio_seconds: float | None) -> float:
    return (audio_seconds or 0.0) / 60.0 * settings.prices[TRANSCRIBE_PRICE[provider]]


def translation_cost(settings: Settings, provider: str, characters: int) -> float:
    return characters / 1000.0 * settings.prices[TRANSLATE_PRICE[provider]]
