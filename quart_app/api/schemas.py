"""Request and response models shared by the REST blueprints (they also feed /openapi.json)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator


class ErrorBody(BaseModel):
    error: str
    message: str
    request_id: str | None = None


class UserOut(BaseModel):
    id: str
    email: str | None
    name: str | None
    role: str
    has_pin: bool
    created_at: float


class MeOut(BaseModel):
    user: UserOut
    auth: str = Field(description="auth0, api_key or session")
    is_admin: bool
    claims: dict[str, Any] | None = None


class PinIn(BaseModel):
    pin: str = Field(description="4 to 8 ASCII digits", min_length=4, max_length=8)


class PinSignInIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    pin: str = Field(min_length=1, max_length=64)


class SessionOut(BaseModel):
    token: str
    token_type: str = "Bearer"
    expires_in: int
    user: UserOut


class ApiKeyIn(BaseModel):
    name: str = Field(default="default", min_length=1, max_length=100)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None
    revoked: bool


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The full key. Shown once; store it now.")


class ApiKeyListOut(BaseModel):
    keys: list[ApiKeyOut]


class MobileAuthIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)


class TranscriptionUpload(BaseModel):
    """multipart/form-data: the audio file in `audio`, optional `language` (ISO-639-1, e.g. en)."""

    audio: str = Field(
        json_schema_extra={"format": "binary"},
        description="wav, mp3, webm, ogg, m4a or flac; the type is read from the content",
    )
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


class ProcessingInfo(BaseModel):
    model: str
    latency_ms: int


class TranscriptionOut(BaseModel):
    id: str
    transcript: str
    language: str | None
    duration_s: float | None
    provider: str
    processing_info: ProcessingInfo


class SegmentOut(BaseModel):
    start: float
    end: float
    text: str


class StoredTranscriptionOut(BaseModel):
    id: str
    transcript: str
    language: str | None
    duration_s: float | None
    provider: str
    model: str | None
    source: str
    filename: str | None
    created_at: float
    segments: list[SegmentOut] | None = None


class PageQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)
    q: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="full-text search (transcriptions only); no control characters",
    )


class TranscriptionPage(BaseModel):
    items: list[StoredTranscriptionOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class TranslationIn(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)
    target_language: str = Field(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    source_language: str | None = Field(
        default=None, min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
    )


class TranslationOut(BaseModel):
    id: str
    translation: str
    provider: str
    model: str


class StoredTranslationOut(BaseModel):
    id: str
    provider: str
    model: str | None
    source_language: str | None
    target_language: str
    text: str
    translation: str
    created_at: float


class TranslationPage(BaseModel):
    items: list[StoredTranslationOut]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class UsageQuery(BaseModel):
    month: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$", description="YYYY-MM, default this month")


class UsageService(BaseModel):
    service: str
    requests: int
    audio_seconds: float
    characters: int
    cost_usd: float
    duration_ms: int


class UsageOut(BaseModel):
    month: str
    services: list[UsageService]
    total_cost_usd: float
    total_requests: int


CallStatus = Literal[
    "live", "queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"
]


class CallsQuery(BaseModel):
    tenant_id: str | None = Field(default=None, min_length=1, max_length=200, description="only this tenant's calls")
    status: CallStatus | None = Field(
        default=None,
        description="Twilio's last reported status, or `live`: the relay holds the call's media stream now",
    )
    since: datetime | None = Field(
        default=None, description="ISO 8601; calls first known at or after this time (no zone: UTC)"
    )
    until: datetime | None = Field(
        default=None, description="ISO 8601; calls first known before this time (no zone: UTC)"
    )
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _ordered(self) -> CallsQuery:
        if self.since is not None and self.until is not None and epoch(self.since) > epoch(self.until):
            raise ValueError("since must not be after until")
        return self


def epoch(moment: datetime) -> float:
    """Seconds since the epoch; a time without a zone is UTC."""
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


class CallOut(BaseModel):
    call_sid: str
    account_sid: str | None
    from_number: str | None
    to_number: str | None
    direction: str | None
    status: str
    sequence: int
    duration_s: int | None
    created_at: float
    updated_at: float
    tenant_id: str | None = None
    stream_sid: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    relay_status: str | None = None
    provider_sessions: int = 0
    responses: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0


class CallPage(BaseModel):
    items: list[CallOut]
    total: int = Field(description="calls matching the filters, over every page")
    limit: int
    offset: int
    next_offset: int | None = Field(description="the next page's offset; null on the last page")


# ----- the realtime phone agent: tenants, knowledge, call transcripts ----------------------------------------

E164 = r"^\+[1-9][0-9]{6,14}$"


class ServerVad(BaseModel):
    """Voice activity by loudness: speech starts above `threshold`, a turn ends after `silence_duration_ms`."""

    type: Literal["server_vad"]
    threshold: float | None = Field(default=None, ge=0, le=1)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=5000)
    silence_duration_ms: int | None = Field(default=None, ge=0, le=10_000)


class SemanticVad(BaseModel):
    """A turn ends when the model judges the caller has finished; `eagerness` sets how soon."""

    type: Literal["semantic_vad"]
    eagerness: Literal["low", "medium", "high", "auto"] | None = None


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class TenantIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    phone_numbers: list[Annotated[str, Field(pattern=E164)]] = Field(default_factory=list, max_length=50)
    instructions: str = Field(min_length=1, max_length=20_000)
    greeting: str | None = Field(default=None, max_length=1000, description="said when a call is answered")
    voice: str | None = Field(default=None, max_length=64, description="default: REALTIME_VOICE")
    model: str | None = Field(default=None, max_length=100, description="default: REALTIME_MODEL")
    turn_detection: TurnDetection = Field(default_factory=lambda: ServerVad(type="server_vad"))
    knowledge_enabled: bool = False
    max_call_s: int | None = Field(default=None, ge=10, le=24 * 3600, description="unset: no limit")
    audio_format: Literal["pcmu", "pcm16"] | None = Field(default=None, description="default: REALTIME_AUDIO_FORMAT")


class TenantPatch(BaseModel):
    """Only the fields present change; `null` clears an optional one."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    phone_numbers: list[Annotated[str, Field(pattern=E164)]] | None = Field(default=None, max_length=50)
    instructions: str | None = Field(default=None, min_length=1, max_length=20_000)
    greeting: str | None = Field(default=None, max_length=1000)
    voice: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=100)
    turn_detection: TurnDetection | None = None
    knowledge_enabled: bool | None = None
    max_call_s: int | None = Field(default=None, ge=10, le=24 * 3600)
    audio_format: Literal["pcmu", "pcm16"] | None = None


class TenantOut(BaseModel):
    id: str
    name: str
    phone_numbers: list[str]
    instructions: str
    greeting: str | None
    voice: str | None
    model: str | None
    turn_detection: dict[str, Any]
    knowledge_enabled: bool
    max_call_s: int | None
    audio_format: str | None
    created_at: float
    updated_at: float


class TenantPage(BaseModel):
    items: list[TenantOut]
    total: int
    limit: int
    offset: int


class ListQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class DocumentIn(BaseModel):
    """A text document as JSON. (Or send multipart/form-data: the file in `file`, optionally `title`.)"""

    title: str = Field(min_length=1, max_length=300)
    text: str = Field(min_length=1, max_length=5_000_000)


class DocumentOut(BaseModel):
    id: str
    tenant_id: str
    title: str
    filename: str | None
    content_type: str
    size_chars: int
    passages: int
    created_at: float


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    total: int
    limit: int
    offset: int


class SearchQuery(BaseModel):
    q: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")
    limit: int = Field(default=5, ge=1, le=20)


class PassageOut(BaseModel):
    document_id: str
    title: str
    position: int
    text: str
    score: float


class SearchOut(BaseModel):
    query: str
    results: list[PassageOut]
    tool_output: str = Field(description="exactly what search_knowledge gives the agent for this query")


class TranscriptItemOut(BaseModel):
    seq: int
    role: str
    text: str
    call_ms: int
    at: float
    interrupted: bool
    latency_ms: int | None


class CallSegmentOut(BaseModel):
    """One media stream of a call: the instance that relayed it, and why it ended (a moved call has several)."""

    seq: int
    instance: str
    stream_sid: str
    started_at: float
    ended_at: float | None
    end_reason: str | None
    recovered_by: str | None = Field(description="the instance that took this stream's call over after it was lost")


class CallDetailOut(CallOut):
    transcript: list[TranscriptItemOut]
    segments: list[CallSegmentOut]


class DocumentDetailOut(DocumentOut):
    text: str
