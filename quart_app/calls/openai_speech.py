"""The OpenAI Realtime API (GA) behind the `SpeechConnector` interface.

Opening a session: connect (model on the URL) → `session.created` → one `session.update` (instructions, voice,
audio formats, turn detection, input transcription, tools) → `session.updated` → the conversation so far as
`conversation.item.create`s. Replayed assistant turns are `output_text` content: the GA API silently ignores an
assistant item with any other content type. The session JSON is a pure function of the `SpeechConfig` (keys
sorted), so every session of a call gets byte-identical instructions and tools and the prompt cache keeps hitting.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ..providers.realtime import RealtimeClient, RealtimeLink, RealtimeUnavailable
from .speech import (
    AssistantText,
    AudioDelta,
    HistoryItem,
    ResponseDone,
    ResponseStarted,
    Role,
    SpeechConfig,
    SpeechError,
    SpeechEvent,
    SpeechStarted,
    SpeechStopped,
    SpeechUnavailable,
    ToolCall,
    Usage,
    UserText,
)

log = logging.getLogger(__name__)

FORMATS = {"pcmu": {"type": "audio/pcmu"}, "pcm16": {"type": "audio/pcm", "rate": 24_000}}
FATAL_ERRORS = {"session_expired"}
_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
_APPEND_TAIL = '"}'


def session_update_json(config: SpeechConfig) -> str:
    """The `session.update` event for `config`, always the same bytes for the same config."""
    audio_format = FORMATS[config.audio_format]
    audio_input: dict[str, Any] = {"format": audio_format, "turn_detection": dict(config.turn_detection)}
    if config.transcription_model:
        audio_input["transcription"] = {"model": config.transcription_model}
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": config.instructions,
        "audio": {"input": audio_input, "output": {"format": audio_format, "voice": config.voice}},
        "tools": [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
            for t in config.tools
        ],
        "tool_choice": "auto",
    }
    return json.dumps({"type": "session.update", "session": session}, sort_keys=True, separators=(",", ":"))


def history_event(item: HistoryItem) -> dict[str, Any]:
    part = {"type": "output_text" if item.role == "assistant" else "input_text", "text": item.text}
    return {"type": "conversation.item.create", "item": {"type": "message", "role": item.role, "content": [part]}}


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details_in = raw.get("input_token_details") or {}
    details_out = raw.get("output_token_details") or {}
    return Usage(
        input_tokens=int(raw.get("input_tokens") or 0),
        cached_tokens=int(details_in.get("cached_tokens") or 0),
        output_tokens=int(raw.get("output_tokens") or 0),
        audio_input_tokens=int(details_in.get("audio_tokens") or 0),
        audio_output_tokens=int(details_out.get("audio_tokens") or 0),
    )


def translate(event: dict[str, Any]) -> SpeechEvent | None:
    """A GA server event as a provider-neutral one (None for the many the relay does not need)."""
    kind = event.get("type")
    if kind == "response.output_audio.delta":
        return AudioDelta(event.get("response_id", ""), event.get("item_id", ""), event.get("delta", ""))
    if kind == "input_audio_buffer.speech_started":
        return SpeechStarted(event.get("item_id"))
    if kind == "input_audio_buffer.speech_stopped":
        return SpeechStopped(event.get("item_id"))
    if kind == "response.created":
        return ResponseStarted((event.get("response") or {}).get("id", ""))
    if kind == "response.output_audio_transcript.done":
        return AssistantText(event.get("item_id", ""), event.get("transcript") or "")
    if kind == "conversation.item.input_audio_transcription.completed":
        return UserText(event.get("item_id", ""), event.get("transcript") or "")
    if kind == "response.function_call_arguments.done":
        return ToolCall(
            event.get("call_id", ""), event.get("name", ""), event.get("arguments") or "{}", event.get("response_id")
        )
    if kind == "response.done":
        response = event.get("response") or {}
        output = response.get("output") or []
        had_audio = any(
            isinstance(o, dict) and any(p.get("type") == "output_audio" for p in o.get("content") or []) for o in output
        )
        return ResponseDone(
            response.get("id", ""), response.get("status", ""), _usage(response.get("usage")), had_audio
        )
    if kind == "error":
        error = event.get("error") or {}
        code = error.get("code")
        return SpeechError(code, str(error.get("message") or ""), code in FATAL_ERRORS, dict(error))
    return None


class OpenAIRealtimeSession:
    """One GA Realtime session, seen through the SpeechSession interface."""

    def __init__(self, link: RealtimeLink, session_id: str, events_received: int = 0) -> None:
        self._link = link
        self.session_id = session_id
        self.events_received = (
            events_received  # server events read, relevant or not (tests compare it with the provider's)
        )

    @property
    def close_code(self) -> int | None:
        return self._link.close_code

    async def send_audio(self, audio: str) -> None:
        # base64 needs no JSON escaping: the event is two constants around the payload
        await self._link.send_text(_APPEND_HEAD + audio + _APPEND_TAIL)

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        await self._link.send(
            {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms}
        )

    async def add_text(self, role: Role, text: str) -> None:
        await self._link.send(history_event(HistoryItem(role, text)))

    async def tool_result(self, call_id: str, output: str) -> None:
        await self._link.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )

    async def respond(self) -> None:
        await self._link.send_text('{"type":"response.create"}')

    async def events(self) -> AsyncIterator[SpeechEvent]:
        while True:
            raw = await self._link.recv()
            if raw is None:
                return
            self.events_received += 1
            event = translate(raw)
            if event is not None:
                yield event

    async def close(self) -> None:
        await self._link.close()


class OpenAISpeech:
    """The connector: opens configured sessions on one RealtimeClient."""

    name = "openai"

    def __init__(self, client: RealtimeClient, *, ready_timeout: float = 10.0) -> None:
        self.client = client
        self.ready_timeout = ready_timeout

    async def open(self, config: SpeechConfig, history: Sequence[HistoryItem] = ()) -> OpenAIRealtimeSession:
        try:
            link = await self.client.connect(config.model)
        except RealtimeUnavailable as exc:
            raise SpeechUnavailable(str(exc)) from None
        seen = [0]
        try:
            async with asyncio.timeout(self.ready_timeout):
                created = await self._expect(link, "session.created", seen)
                await link.send_text(session_update_json(config))
                await self._expect(link, "session.updated", seen)
            for item in history:
                if item.text:
                    await link.send(history_event(item))
        except TimeoutError:
            await link.close()
            raise SpeechUnavailable(f"the Realtime session was not ready within {self.ready_timeout:g} s") from None
        except (SpeechUnavailable, ConnectionError) as exc:
            await link.close()
            raise SpeechUnavailable(str(exc)) from None
        except BaseException:
            await link.close()
            raise
        return OpenAIRealtimeSession(link, str((created.get("session") or {}).get("id") or ""), seen[0])

    @staticmethod
    async def _expect(link: RealtimeLink, kind: str, seen: list[int]) -> dict[str, Any]:
        while True:
            event = await link.recv()
            seen[0] += event is not None
            if event is None:
                raise SpeechUnavailable(f"the Realtime API closed the session ({link.close_code}) before {kind}")
            if event.get("type") == kind:
                return event
            if event.get("type") == "error":
                error = event.get("error") or {}
                raise SpeechUnavailable(
                    f"the Realtime API refused the session: {error.get('code')}: {error.get('message')}"
                )

    async def close(self) -> None:
        await self.client.close()
