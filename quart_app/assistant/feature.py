"""The assistant feature: the to-do service, the assistant and its speech, built once per process.

    feature = web.state.feature(AssistantFeature)
    feature.todos        # TodoService: list(user_id), add/update/complete/delete, subscribe(listener)
    feature.assistant    # Assistant: respond(user_id, text) -> Reply
    feature.speech       # Speech: transcribe(audio, mime) -> str, synthesize(text) -> (bytes, mime)

It starts without any model configured: `respond` then raises AssistantUnavailable and `speech` SpeechFailed,
each with a message a user may read, while the to-do list itself (REST) keeps working.
"""

from __future__ import annotations

import contextlib
import logging

import openai

from ..db.handle import DatabaseHandle
from ..providers.registry import Providers
from ..settings import Settings, secret
from .agent import Assistant
from .speech import Speech
from .todos import TodoService

log = logging.getLogger(__name__)


class AssistantFeature:
    name = "assistant"

    def __init__(
        self, todos: TodoService, assistant: Assistant, speech: Speech, clients: tuple[openai.AsyncOpenAI, ...] = ()
    ) -> None:
        self.todos = todos
        self.assistant = assistant
        self.speech = speech
        self._clients = clients

    @classmethod
    def build(cls, settings: Settings, database: DatabaseHandle, providers: Providers) -> AssistantFeature:
        """From the settings: the chat model (ASSISTANT_LLM_*, falling back to OPENAI_*), the configured OpenAI
        transcriber for speech-to-text, and OpenAI audio.speech for the spoken answers."""
        todos = TodoService(database)
        clients: list[openai.AsyncOpenAI] = []
        chat = None
        if settings.assistant_llm_secret is not None:
            chat = openai.AsyncOpenAI(
                api_key=secret(settings.assistant_llm_secret),
                base_url=settings.assistant_llm_url,
                timeout=settings.assistant_llm_timeout,
                max_retries=1,
            )
            clients.append(chat)
        voice = None
        if settings.openai_api_key is not None:
            voice = openai.AsyncOpenAI(
                api_key=secret(settings.openai_api_key),
                base_url=settings.openai_base_url,
                timeout=settings.openai_timeout,
                max_retries=1,
            )
            clients.append(voice)
        assistant = Assistant(
            todos,
            database,
            chat,
            settings.assistant_llm_model,
            max_tool_rounds=settings.assistant_max_tool_rounds,
            memory_messages=settings.assistant_memory_messages,
        )
        speech = Speech(
            providers.transcribers.get("openai"),
            voice,
            tts_model=settings.openai_tts_model,
            voice=settings.openai_tts_voice,
        )
        return cls(todos, assistant, speech, tuple(clients))

    async def start(self) -> None:
        if not self.assistant.configured:
            log.warning("assistant: no chat model configured (set ASSISTANT_LLM_API_KEY or OPENAI_API_KEY)")

    async def drain(self, deadline: float) -> None:
        return None

    async def stop(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.close()
