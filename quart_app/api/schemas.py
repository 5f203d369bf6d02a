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
