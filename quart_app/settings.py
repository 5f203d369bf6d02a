"""Settings: read once from the environment, typed, validated, secrets redacted.

`Settings.from_env()` collects every problem before raising, so a misconfigured deploy is fixed in one
round trip rather than one variable at a time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")

APP_ENVS = ("development", "test", "production")
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/app.db"
# Values people paste from tutorials; refusing them in production is cheaper than a leaked session key.
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "your-secret-key", "xxx"}


# USD list prices used for usage_logs.cost_usd; override any of them with PRICES="name=value,...".
DEFAULT_PRICES: dict[str, float] = {
    "deepgram_per_minute": 0.0043,
    "openai_transcribe_per_minute": 0.006,
    "openai_translate_per_1k_chars": 0.0006,
    "deepseek_translate_per_1k_chars": 0.0002,
}


class SettingsError(Exception):
    """Every invalid or missing variable, named in one message."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class Secret:
    """A string that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    configured: bool
    missing: tuple[str, ...]


def normalize_database_url(url: str) -> str:
    """Accept the URL shapes Render and Heroku inject and return the async-driver form."""
    scheme, _, rest = url.partition("://")
    if not rest:
        raise ValueError("must look like scheme://...")
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql", "postgresql+asyncpg"):
        return "postgresql+asyncpg://" + rest
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return "sqlite+aiosqlite://" + rest
    raise ValueError("scheme must be postgres://, postgresql://, postgresql+asyncpg:// or sqlite+aiosqlite://")


def redact_url(url: str) -> str:
    """Drop the password from a URL so it can be logged or shown in an error."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class Settings:
    app_env: str = "development"
    secret_key: Secret | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    instance_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = 10
    redis_url: str | None = None

    cors_origins: tuple[str, ...] = ()
    public_base_url: str | None = None
    app_route_prefix: str = ""
    max_upload_mb: int = 100
    upload_timeout_s: int = 600
    max_media_minutes: int = 180
    jobs_dir: str = "./data/jobs"
    transcribe_concurrency: int = 4

    socketio_ping_interval: float = 25.0
    socketio_ping_timeout: float = 20.0
    socketio_max_http_buffer_size: int = 1_000_000

    auth0_domain: str | None = None
    auth0_audience: str | None = None
    auth0_request_timeout: float = 5.0
    auth0_base_url: str | None = None
    auth0_role_claim: str | None = None
    auth0_admin_permission: str = "admin"
    auth0_jwks_min_refresh_s: float = 10.0
    rate_limit_per_minute: int = 100
    trusted_proxy_count: int = 0
    pin_max_attempts: int = 5
    pin_lockout_seconds: int = 900

    openai_api_key: Secret | None = None
    openai_base_url: str | None = None
    openai_realtime_url: str | None = None
    openai_transcribe_model: str = "whisper-1"
    openai_translate_model: str = "gpt-4o-mini"
    openai_timeout: float = 60.0
    openai_transcribe_max_mb: float = 24.0
    deepgram_api_key: Secret | None = None
    deepgram_base_url: str | None = None
    deepgram_model: str = "nova-3"
    deepseek_api_key: Secret | None = None
    deepseek_base_url: str | None = None
    deepseek_model: str = "deepseek-chat"

    twilio_account_sid: str | None = None
    twilio_auth_token: Secret | None = None
    twilio_api_base_url: str | None = None
    twilio_stream_url: str | None = None
    twilio_validate_signatures: bool = True

    allow_insecure_session_auth: bool = False
    prices: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default `os.environ`), raising one SettingsError for all problems."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        values: dict[str, Any] = {
            "app_env": reader.choice("APP_ENV", APP_ENVS, "development"),
            "secret_key": reader.secret("SECRET_KEY"),
            "log_level": reader.choice("LOG_LEVEL", LOG_LEVELS, "INFO", upper=True),
            "database_url": reader.parsed("DATABASE_URL", normalize_database_url, DEFAULT_DATABASE_URL),
            "database_pool_size": reader.integer("DATABASE_POOL_SIZE", 10, minimum=1, maximum=200),
            "redis_url": reader.url("REDIS_URL", schemes=("redis", "rediss", "unix")),
            "cors_origins": reader.origins("CORS_ORIGINS"),
            "public_base_url": reader.url("PUBLIC_BASE_URL", schemes=("https", "http"), strip_slash=True),
            "app_route_prefix": reader.parsed("APP_ROUTE_PREFIX", _route_prefix, ""),
            "max_upload_mb": reader.integer("MAX_UPLOAD_MB", 100, minimum=1, maximum=2048),
            "upload_timeout_s": reader.integer("UPLOAD_TIMEOUT_S", 600, minimum=5, maximum=7200),
            "max_media_minutes": reader.integer("MAX_MEDIA_MINUTES", 180, minimum=1, maximum=24 * 60),
            "jobs_dir": reader.text("JOBS_DIR") or "./data/jobs",
            "transcribe_concurrency": reader.integer("TRANSCRIBE_CONCURRENCY", 4, minimum=1, maximum=32),
            "socketio_ping_interval": reader.number("SOCKETIO_PING_INTERVAL", 25.0, minimum=1),
            "socketio_ping_timeout": reader.number("SOCKETIO_PING_TIMEOUT", 20.0, minimum=1),
            "socketio_max_http_buffer_size": reader.integer(
                "SOCKETIO_MAX_HTTP_BUFFER_SIZE", 1_000_000, minimum=1024, maximum=64 * 1024 * 1024
            ),
            "auth0_domain": reader.text("AUTH0_DOMAIN"),
            "auth0_audience": reader.text("AUTH0_AUDIENCE"),
            "auth0_request_timeout": reader.number("AUTH0_REQUEST_TIMEOUT", 5.0, minimum=0.1),
            "auth0_base_url": reader.url("AUTH0_BASE_URL", schemes=("https", "http"), strip_slash=True),
            "auth0_role_claim": reader.text("AUTH0_ROLE_CLAIM"),
            "auth0_admin_permission": reader.text("AUTH0_ADMIN_PERMISSION") or "admin",
            "auth0_jwks_min_refresh_s": reader.number("AUTH0_JWKS_MIN_REFRESH_S", 10.0, minimum=0.1),
            "rate_limit_per_minute": reader.integer("RATE_LIMIT_PER_MINUTE", 100, minimum=1),
            "trusted_proxy_count": reader.integer("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=10),
            "pin_max_attempts": reader.integer("PIN_MAX_ATTEMPTS", 5, minimum=1, maximum=100),
            "pin_lockout_seconds": reader.integer("PIN_LOCKOUT_SECONDS", 900, minimum=1),
            "openai_api_key": reader.secret("OPENAI_API_KEY"),
            "openai_base_url": reader.url("OPENAI_BASE_URL", schemes=("https", "http"), strip_slash=True),
            "openai_realtime_url": reader.url("OPENAI_REALTIME_URL", schemes=("wss", "ws"), strip_slash=True),
            "openai_transcribe_model": reader.text("OPENAI_TRANSCRIBE_MODEL") or "whisper-1",
            "openai_translate_model": reader.text("OPENAI_TRANSLATE_MODEL") or "gpt-4o-mini",
            "openai_timeout": reader.number("OPENAI_TIMEOUT", 60.0, minimum=0.1),
            # Fractional so tests can lower it to a few hundred KB; chunks stay under it.
            "openai_transcribe_max_mb": reader.number("OPENAI_TRANSCRIBE_MAX_MB", 24.0, minimum=0.05),
            "deepgram_api_key": reader.secret("DEEPGRAM_API_KEY"),
            "deepgram_base_url": reader.url("DEEPGRAM_BASE_URL", schemes=("https", "http"), strip_slash=True),
            "deepgram_model": reader.text("DEEPGRAM_MODEL") or "nova-3",
            "deepseek_api_key": reader.secret("DEEPSEEK_API_KEY"),
            "deepseek_base_url": reader.url("DEEPSEEK_BASE_URL", schemes=("https", "http"), strip_slash=True),
            "deepseek_model": reader.text("DEEPSEEK_MODEL") or "deepseek-chat",
            "twilio_account_sid": reader.text("TWILIO_ACCOUNT_SID"),
            "twilio_auth_token": reader.secret("TWILIO_AUTH_TOKEN"),
            "twilio_api_base_url": reader.url("TWILIO_API_BASE_URL", schemes=("https", "http"), strip_slash=True),
            "twilio_stream_url": reader.url("TWILIO_STREAM_URL", schemes=("wss", "ws"), strip_slash=True),
            "allow_insecure_session_auth": reader.boolean("ALLOW_INSECURE_SESSION_AUTH", False),
            "prices": reader.parsed("PRICES", _prices, dict(DEFAULT_PRICES)),
        }
        values["log_format"] = reader.choice(
            "LOG_FORMAT", LOG_FORMATS, "json" if values["app_env"] == "production" else "text"
        )
        values["twilio_validate_signatures"] = reader.boolean("TWILIO_VALIDATE_SIGNATURES", True)
        instance_id = reader.text("INSTANCE_ID")
        if instance_id:
            values["instance_id"] = instance_id

        problems = reader.problems
        if values["app_env"] == "production":
            key = values["secret_key"]
            if key is None or key.get().strip().lower() in PLACEHOLDER_SECRETS or len(key.get()) < 32:
                problems.append("SECRET_KEY: required in production (at least 32 random characters, no placeholder)")
            if values["allow_insecure_session_auth"]:
                problems.append("ALLOW_INSECURE_SESSION_AUTH: may not be true in production")
        if values["openai_transcribe_max_mb"] > 25:
            problems.append("OPENAI_TRANSCRIBE_MAX_MB: must be at most 25 (OpenAI's own upload limit)")
        if not values["twilio_validate_signatures"] and values["app_env"] != "development":
            problems.append("TWILIO_VALIDATE_SIGNATURES: may be false only when APP_ENV=development")
        if problems:
            raise SettingsError(problems)
        return cls(**values)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def openai_transcribe_max_bytes(self) -> int:
        return int(self.openai_transcribe_max_mb * 1024 * 1024)

    @property
    def auth0_issuer(self) -> str | None:
        return f"https://{self.auth0_domain}/" if self.auth0_domain else None

    @property
    def auth0_url(self) -> str | None:
        if self.auth0_base_url:
            return self.auth0_base_url
        return f"https://{self.auth0_domain}" if self.auth0_domain else None

    def providers(self) -> dict[str, ProviderStatus]:
        """Which providers have what they need, and which variables are missing for the rest."""
        required: dict[str, dict[str, Any]] = {
            "auth0": {"AUTH0_DOMAIN": self.auth0_domain, "AUTH0_AUDIENCE": self.auth0_audience},
            "openai": {"OPENAI_API_KEY": self.openai_api_key},
            "deepgram": {"DEEPGRAM_API_KEY": self.deepgram_api_key},
            "deepseek": {"DEEPSEEK_API_KEY": self.deepseek_api_key},
            "twilio": {"TWILIO_ACCOUNT_SID": self.twilio_account_sid, "TWILIO_AUTH_TOKEN": self.twilio_auth_token},
        }
        result = {}
        for name, variables in required.items():
            missing = tuple(var for var, value in variables.items() if not value)
            result[name] = ProviderStatus(name, not missing, missing)
        return result

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={_redacted(f.name, getattr(self, f.name))!r}" for f in fields(self))
        return f"Settings({shown})"


def _redacted(name: str, value: Any) -> Any:
    if name in ("database_url", "redis_url") and isinstance(value, str):
        return redact_url(value)
    return value


def _prices(value: str) -> dict[str, float]:
    prices = dict(DEFAULT_PRICES)
    for item in value.split(","):
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or name not in DEFAULT_PRICES:
            raise ValueError(f"entries must be name=value with name in {', '.join(DEFAULT_PRICES)} (got {item!r})")
        try:
            prices[name] = float(number)
        except ValueError:
            raise ValueError(f"{name} must be a number (got {number!r})") from None
        if prices[name] < 0:
            raise ValueError(f"{name} must not be negative")
    return prices


def _route_prefix(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value:
        return ""
    if not value.startswith("/") or any(c in value for c in " ?#"):
        raise ValueError("must be a path such as /sambanova_todo")
    return value


class _Reader:
    """Reads variables and records every problem instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str) -> str | None:
        return self._raw(name)

    def secret(self, name: str) -> Secret | None:
        value = self._raw(name)
        return Secret(value) if value is not None else None

    def parsed(self, name: str, parse: Callable[[str], T], default: T) -> T:
        value = self._raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as exc:
            self.problems.append(f"{name}: {exc}")
            return default

    def choice(self, name: str, options: tuple[str, ...], default: str, upper: bool = False) -> str:
        def parse(value: str) -> str:
            value = value.upper() if upper else value.lower()
            if value not in options:
                raise ValueError(f"must be one of {', '.join(options)} (got {value!r})")
            return value

        return self.parsed(name, parse, default)

    def integer(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        def parse(value: str) -> int:
            try:
                number = int(value)
            except ValueError:
                raise ValueError(f"must be an integer (got {value!r})") from None
            _check_range(number, minimum, maximum)
            return number

        return self.parsed(name, parse, default)

    def number(self, name: str, default: float, minimum: float | None = None) -> float:
        def parse(value: str) -> float:
            try:
                number = float(value)
            except ValueError:
                raise ValueError(f"must be a number (got {value!r})") from None
            _check_range(number, minimum, None)
            return number

        return self.parsed(name, parse, default)

    def boolean(self, name: str, default: bool) -> bool:
        def parse(value: str) -> bool:
            lowered = value.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"must be true or false (got {value!r})")

        return self.parsed(name, parse, default)

    def url(self, name: str, schemes: tuple[str, ...], strip_slash: bool = False) -> str | None:
        def parse(value: str) -> str:
            parts = urlsplit(value)
            if parts.scheme not in schemes or not (parts.netloc or parts.scheme == "unix"):
                raise ValueError(f"must be a {'/'.join(s + '://' for s in schemes)} URL")
            return value.rstrip("/") if strip_slash else value

        return self.parsed(name, parse, None)

    def origins(self, name: str) -> tuple[str, ...]:
        def parse(value: str) -> tuple[str, ...]:
            items = tuple(item.strip().rstrip("/") for item in value.split(",") if item.strip())
            for item in items:
                if item == "*":
                    continue
                parts = urlsplit(item)
                if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                    raise ValueError(f"each origin must be scheme://host[:port] (got {item!r})")
            return items

        return self.parsed(name, parse, ())


def _check_range(number: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise ValueError(f"must be at least {minimum} (got {number})")
    if maximum is not None and number > maximum:
        raise ValueError(f"must be at most {maximum} (got {number})")
