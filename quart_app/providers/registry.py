"""Builds each configured provider from Settings; an unconfigured one answers 503 naming its variables."""

from __future__ import annotations

from dataclasses import dataclass

import openai

from ..errors import ProviderUnconfigured
from ..settings import Settings
from .chat_translate import ChatTranslator
from .deepgram import DeepgramTranscriber, build_client
from .openai_transcribe import OpenAITranscriber
from .results import Transcriber, Translator

DEEPSEEK_DEFAULT_BASE_URL = "https://api.deepseek.com"


@dataclass
class Providers:
    settings: Settings
    transcribers: dict[str, Transcriber]
    translators: dict[str, Translator]
    _openai: openai.AsyncOpenAI | None = None
    _deepseek: openai.AsyncOpenAI | None = None

    def transcriber(self, name: str) -> Transcriber:
        if name not in self.transcribers:
            raise ProviderUnconfigured(name, self.settings.providers()[name].missing)
        return self.transcribers[name]

    def translator(self, name: str) -> Translator:
        if name not in self.translators:
            raise ProviderUnconfigured(name, self.settings.providers()[name].missing)
        return self.translators[name]

    async def close(self) -> None:
        for client in (self._openai, self._deepseek):
            if client is not None:
                await client.close()


def build_providers(settings: Settings) -> Providers:
    providers = Providers(settings, {}, {})
    if settings.openai_api_key:
        providers._openai = openai.AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            timeout=settings.openai_timeout,
            max_retries=1,
        )
        providers.transcribers["openai"] = OpenAITranscriber(
            providers._openai, settings.openai_transcribe_model, settings.openai_timeout
        )
        providers.translators["openai"] = ChatTranslator(
            "openai", providers._openai, settings.openai_translate_model, settings.openai_timeout
        )
    if settings.deepgram_api_key:
        client = build_client(
            settings.deepgram_api_key.get_secret_value(), settings.deepgram_base_url, settings.deepgram_timeout
        )
        providers.transcribers["deepgram"] = DeepgramTranscriber(
            client, settings.deepgram_model, settings.deepgram_timeout
        )
    if settings.deepseek_api_key:
        providers._deepseek = openai.AsyncOpenAI(
            api_key=settings.deepseek_api_key.get_secret_value(),
            base_url=settings.deepseek_base_url or DEEPSEEK_DEFAULT_BASE_URL,
            timeout=settings.deepseek_timeout,
            max_retries=1,
        )
        providers.translators["deepseek"] = ChatTranslator(
            "deepseek", providers._deepseek, settings.deepseek_model, settings.deepseek_timeout
        )
    return providers
