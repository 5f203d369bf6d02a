"""The speech-to-speech provider as a call sees it: a small interface, so another backend can be added
without touching the Twilio side.

    connector: SpeechConnector                      # e.g. calls.openai_speech.OpenAISpeech
    session = await connector.open(config, history)  # configured, conversation so far replayed; SpeechUnavailable
    await session.send_audio(b64_frame)              # in `config.audio_format`, base64
    async for event in session.events(): ...         # SpeechStarted, AudioDelta, ... ; ends when the provider closes
    await session.truncate(item_id, audio_end_ms); await session.add_text("user", "..."); await session.respond()
    await session.tool_result(call_id, output); await session.close()

Audio travels as base64 text end to end: Twilio's μ-law payload goes to the provider as it came (no decode on the
hot path) when the provider speaks μ-law (`pcmu`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

AudioFormat = Literal["pcmu", "pcm16"]
Role = Literal["user", "assistant", "system"]


class SpeechUnavailable(Exception):
    """A session could not be opened or configured."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class SpeechConfig:
    """Everything that configures a session. Kept byte-identical for the whole call (prompt caching)."""

    model: str
    instructions: str
    voice: str
    audio_format: AudioFormat
    turn_detection: dict[str, Any]
    transcription_model: str | None
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True)
class HistoryItem:
    """One turn of the conversation so far, replayed into a new session."""

    role: Role
    text: str


# ----- events (provider-neutral) ---------------------------------------------------------------------------


@dataclass(slots=True)
class SpeechStarted:
    item_id: str | None


@dataclass(slots=True)
class SpeechStopped:
    item_id: str | None


@dataclass(slots=True)
class ResponseStarted:
    response_id: str


@dataclass(slots=True)
class AudioDelta:
    response_id: str
    item_id: str
    audio: str  # base64, in the session's audio format


@dataclass(slots=True)
class AssistantText:
    """The final transcript of an assistant audio item (`interrupted` when the response was cut short)."""

    item_id: str
    text: str
    interrupted: bool = False


@dataclass(slots=True)
class UserText:
    """The caller's turn as transcribed."""

    item_id: str
    text: str


@dataclass(slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: str
    response_id: str | None = None


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0


@dataclass(slots=True)
class ResponseDone:
    response_id: str
    status: str  # completed | cancelled | incomplete | failed
    usage: Usage | None = None
    had_audio: bool = False


@dataclass(slots=True)
class SpeechError:
    """An error event. `fatal` ones (the session expired) are followed by the provider closing."""

    code: str | None
    message: str
    fatal: bool = False
    details: dict[str, Any] = field(default_factory=dict)


SpeechEvent = (
    SpeechStarted
    | SpeechStopped
    | ResponseStarted
    | AudioDelta
    | AssistantText
    | UserText
    | ToolCall
    | ResponseDone
    | SpeechError
)


class SpeechSession(Protocol):
    """One provider session. `events()` ends (no exception) when the provider closes, for whatever reason."""

    session_id: str

    @property
    def close_code(self) -> int | None:
        """The provider's close code once it closed the session, else None."""
        ...

    async def send_audio(self, audio: str) -> None: ...

    async def truncate(self, item_id: str, audio_end_ms: int) -> None: ...

    async def add_text(self, role: Role, text: str) -> None: ...

    async def tool_result(self, call_id: str, output: str) -> None: ...

    async def respond(self) -> None: ...

    def events(self) -> AsyncIterator[SpeechEvent]: ...

    async def close(self) -> None: ...


class SpeechConnector(Protocol):
    name: str

    async def open(self, config: SpeechConfig, history: Sequence[HistoryItem] = ()) -> SpeechSession:
        """A configured session with `history` replayed; SpeechUnavailable when that is not possible."""
        ...

    async def close(self) -> None: ...


class ProviderRecorder(Protocol):
    """Where provider connects are reported (the monitoring's `ProviderCalls.record`, injected by the app)."""

    def __call__(
        self, provider: str, kind: str, *, seconds: float, error: str | None = None, detail: str | None = None
    ) -> None: ...


class MeasuredConnector:
    """A connector whose every `open` (a call's first session, or a handoff/recovery) is reported to `record`:
    its time, and `connect_failed` with the reason when no session could be opened."""

    kind = "realtime"

    def __init__(self, inner: SpeechConnector, record: ProviderRecorder) -> None:
        self.inner = inner
        self.name = inner.name
        self.record = record

    async def open(self, config: SpeechConfig, history: Sequence[HistoryItem] = ()) -> SpeechSession:
        started = time.perf_counter()
        try:
            session = await self.inner.open(config, history)
        except Exception as exc:
            detail = str(exc) if isinstance(exc, SpeechUnavailable) else type(exc).__name__
            error = "connect_failed" if isinstance(exc, SpeechUnavailable) else "exception"
            self.record(self.name, self.kind, seconds=time.perf_counter() - started, error=error, detail=detail or None)
            raise
        self.record(self.name, self.kind, seconds=time.perf_counter() - started)
        return session

    async def close(self) -> None:
        await self.inner.close()


def measured(connector: SpeechConnector | None, record: ProviderRecorder) -> SpeechConnector | None:
    """`connector` reporting its opens to `record` (None stays None: the provider is not configured)."""
    return None if connector is None else MeasuredConnector(connector, record)
