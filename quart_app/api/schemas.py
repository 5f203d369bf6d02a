"""Request and response models shared by the REST blueprints (they also feed /openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


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


class CallsQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=500)


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


class CallPage(BaseModel):
    items: list[CallOut]
