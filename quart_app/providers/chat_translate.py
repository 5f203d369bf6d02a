"""Translation through an OpenAI-compatible chat completions API (OpenAI itself, and DeepSeek)."""

from __future__ import annotations

import openai

from .errors import ProviderFailed
from .openai_errors import map_openai_error
from .results import TranslationResult

SYSTEM_PROMPT = (
    "You are a translation engine. Translate the user's message {source}into the language with code "
    "{target}. Target language: {target}. Reply with the translation only: no quotes, notes or explanations."
)


class ChatTranslator:
    def __init__(self, name: str, client: openai.AsyncOpenAI, model: str, timeout: float) -> None:
        self.name = name
        self.client = client
        self.model = model
        self.timeout = timeout

    async def translate(self, text: str, target: str, source: str | None) -> TranslationResult:
        source_part = f"from the language with code {source} " if source else ""
        try:
            completion = await self.client.chat.completions.create(
                model=self.model,
                temperature=0,
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT.format(source=source_part, target=target)},
                    {"role": "user", "content": text},
                ],
            )
        except openai.OpenAIError as exc:
            raise map_openai_error(self.name, exc, self.timeout) from None
        content = completion.choices[0].message.content if completion.choices else None
        if not content or not content.strip():
            raise ProviderFailed(self.name, None, "empty translation")
        return TranslationResult(translation=content.strip(), model=completion.model or self.model)
