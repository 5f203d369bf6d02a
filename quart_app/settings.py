"""Settings: read once from the environment, typed, validated, secrets redacted.

`Settings.from_env()` collects every problem before raising, so a misconfigured deploy is fixed in one
round trip rather than one variable at a time. Each variable is the upper-case name of its field; a
blank value counts as unset. Defaults are written once, on the fields.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

APP_ENVS = ("development", "test", "production")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/app.db"
# Values people paste from tutorials; refusing them in production is cheaper than a leaked session key.
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "development", "your-secret-key", "xxx"}
MIN_PRODUCTION_SECRET_CHARS = 32

# USD list prices used for usage_logs.cost_usd; override any of them with PRICES="name=value,...".
DEFAULT_PRICES: dict[str, float] = {
    "deepgram_per_minute": 0.0043,
    "deepgram_live_per_minute": 0.0077,
    "openai_transcribe_per_minute": 0.006,
    "openai_translate_per_1k_chars": 0.0006,
    "deepseek_translate_per_1k_chars": 0.0002,
}


class SettingsError(Exception):
    """Every invalid or missing variable, named in one message."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    configured: bool
    missing: tuple[str, ...]


# ----- value parsers (each raises ValueError with a message naming what is expected) -------------------


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


def _url(*schemes: str) -> AfterValidator:
    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.scheme == "unix"):
            raise ValueError(f"must be a {'/'.join(s + '://' for s in schemes)} URL")
        return value.rstrip("/") if parts.scheme != "unix" else value

    return AfterValidator(check)


def _origins(value: Any) -> tuple[str, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(value)
    items = tuple(item.strip().rstrip("/") for item in str(value).split(",") if item.strip())
    if "*" in items and len(items) > 1:
        raise ValueError("'*' cannot be mixed with explicit origins: use either '*' or a list of origins")
    for item in items:
        if item == "*":
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(f"each origin must be scheme://host[:port] (got {item!r})")
    return items


def _prices(value: Any) -> dict[str, float]:
    if isinstance(value, dict):
        return value
    prices = dict(DEFAULT_PRICES)
    for item in str(value).split(","):
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


def _host_port(value: str) -> str:
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"must be host:port, e.g. 0.0.0.0:9464 (got {value!r})")
    return value.strip()


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _boolean(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"must be true or false (got {value!r})")


AppEnv = Annotated[Literal["development", "test", "production"], BeforeValidator(_lower)]
Bool = Annotated[bool, BeforeValidator(_boolean)]
HttpUrl = Annotated[str, _url("https", "http")]
WsUrl = Annotated[str, _url("wss", "ws")]
Seconds = Annotated[float, Field(ge=0.1)]


class Settings(BaseSettings):
    """The whole configuration. Build it with `Settings.from_env()`; instances are frozen."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False, hide_input_in_errors=True)

    app_env: AppEnv = "development"
    secret_key: SecretStr | None = None
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)] = "INFO"
    # Unset: json in production, text otherwise (filled in by `_log_format_default`).
    log_format: Annotated[Literal["json", "text"], BeforeValidator(_lower)] = "text"
    instance_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    database_url: Annotated[str, AfterValidator(normalize_database_url)] = DEFAULT_DATABASE_URL
    database_pool_size: Annotated[int, Field(ge=1, le=200)] = 10
    redis_url: Annotated[str, _url("redis", "rediss", "unix")] | None = None

    cors_origins: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_origins)] = ()
    public_base_url: HttpUrl | None = None
    app_route_prefix: Annotated[str, AfterValidator(_route_prefix)] = ""
    max_upload_mb: Annotated[int, Field(ge=1, le=2048)] = 100
    # Every body that is not an upload (JSON, Twilio webhook forms) is refused past this many KiB.
    max_json_kb: Annotated[int, Field(ge=16, le=16 * 1024)] = 256
    upload_timeout_s: Annotated[int, Field(ge=5, le=7200)] = 600
    max_media_minutes: Annotated[int, Field(ge=1, le=24 * 60)] = 180
    jobs_dir: str = "./data/jobs"
    transcribe_concurrency: Annotated[int, Field(ge=1, le=32)] = 4
    # Queued+running jobs per user, and the bytes of their audio kept in the database (429/413 beyond).
    max_jobs_per_user: Annotated[int, Field(ge=1, le=1000)] = 5
    max_job_bytes_per_user: Annotated[int, Field(ge=1024 * 1024, le=1024**4)] = 2 * 1024**3
    # Jobs: the lease a worker holds on a running job (renewed every third of it; once it lapses, e.g. the
    # instance died, any instance takes the job over), how often idle workers look for queued jobs, and the
    # longest chunk a job's audio is cut into (the unit of resumption).
    job_lease_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    job_poll_s: Annotated[float, Field(ge=0.05, le=600)] = 2.0
    job_chunk_s: Annotated[float, Field(ge=1, le=7200)] = 600.0
    # Deadlines of media tools: each ffprobe run; each ffmpeg run at least this, more for long media.
    ffprobe_timeout_s: Annotated[float, Field(ge=0.1, le=600)] = 20.0
    ffmpeg_min_timeout_s: Annotated[float, Field(ge=0.1, le=3600)] = 60.0

    # How long a SIGTERM drain may take before features are cut: jobs requeue, streams finalise, calls move.
    drain_timeout_s: Annotated[float, Field(ge=1, le=3600)] = 20.0
    # Live calls survive deploys and crashes (#22). Each instance writes a heartbeat to the database this often;
    # one silent for CALLS_INSTANCE_EXPIRY_S is dead, and every CALLS_RECOVERY_SWEEP_S a ready instance takes over
    # (through Twilio REST) the calls it was relaying. A draining instance moves each call at a turn boundary,
    # waiting at most CALLS_MOVE_WAIT_S for one. After <Connect> the caller hears CALLS_RECOVERY_HOLD_S seconds of
    # silence (time for a recovery) before the apology, when Twilio REST is configured.
    calls_heartbeat_s: Annotated[float, Field(ge=0.05, le=60)] = 0.5
    calls_instance_expiry_s: Annotated[float, Field(ge=0.2, le=600)] = 1.5
    calls_recovery_sweep_s: Annotated[float, Field(ge=0.05, le=60)] = 0.5
    calls_move_wait_s: Annotated[float, Field(ge=0, le=600)] = 5.0
    calls_recovery_hold_s: Annotated[int, Field(ge=0, le=60)] = 4

    # Monitoring (/monitoring, /metrics): with REDIS_URL each instance writes its figures to Redis this often, or
    # at the pace a dashboard asks for when faster. /metrics needs an admin credential (`admin`), or is served
    # without auth only on METRICS_BIND (`bind`: host:port on a private network for the scraper).
    monitoring_report_s: Annotated[float, Field(ge=0.2, le=60)] = 5.0
    metrics_exposure: Annotated[Literal["admin", "bind"], BeforeValidator(_lower)] = "admin"
    metrics_bind: Annotated[str, AfterValidator(_host_port)] = "127.0.0.1:9464"

    socketio_ping_interval: Annotated[float, Field(ge=1)] = 25.0
    socketio_ping_timeout: Annotated[float, Field(ge=1)] = 20.0
    # 11 MiB: a /voice recording may be up to 10 MB and must get `audio_too_large`, not a closed connection.
    socketio_max_http_buffer_size: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 11 * 1024 * 1024

    # Live transcription (/audio-stream): largest audio message, longest stream, no-audio timeout, streams per
    # user at once (per process), `start`s per user per minute; KeepAlive to Deepgram after this long without
    # audio (Deepgram closes after 10 s), how often final text is saved, how long `stop` waits for the last results.
    stream_max_chunk_bytes: Annotated[int, Field(ge=1024, le=8 * 1024 * 1024)] = 256 * 1024
    stream_max_seconds: Annotated[float, Field(ge=0.5, le=24 * 3600)] = 7200.0
    stream_idle_timeout_s: Annotated[float, Field(ge=0.1, le=3600)] = 30.0
    stream_max_per_user: Annotated[int, Field(ge=1, le=10_000)] = 5
    stream_starts_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 30
    stream_keepalive_s: Annotated[float, Field(ge=0.05, le=9)] = 4.0
    stream_flush_s: Annotated[float, Field(ge=0.1, le=60)] = 3.0
    stream_finalize_timeout_s: Annotated[float, Field(ge=0.1, le=60)] = 3.0

    auth0_domain: str | None = None
    auth0_audience: str | None = None
    auth0_request_timeout: Seconds = 5.0
    auth0_base_url: HttpUrl | None = None
    auth0_role_claim: str | None = None
    auth0_admin_permission: str = "admin"
    auth0_jwks_min_refresh_s: Seconds = 10.0
    rate_limit_per_minute: Annotated[int, Field(ge=1)] = 100
    trusted_proxy_count: Annotated[int, Field(ge=0, le=10)] = 0
    pin_max_attempts: Annotated[int, Field(ge=1, le=100)] = 5
    pin_lockout_seconds: Annotated[int, Field(ge=1)] = 900
    # PIN attempts per account per lockout window from every address together (per pair: PIN_MAX_ATTEMPTS).
    pin_account_max_attempts: Annotated[int, Field(ge=1, le=1000)] = 20
    # PIN sign-in attempts per minute from one client address, and for one account (429 rate_limited).
    pin_signin_address_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 30
    pin_signin_account_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 10
    # scrypt runs in a pool of its own: this many threads, and this many checks waiting; beyond that 503 busy.
    pin_hash_threads: Annotated[int, Field(ge=1, le=16)] = 2
    pin_hash_queue: Annotated[int, Field(ge=0, le=1000)] = 16
    # Keys the in-memory counters (no REDIS_URL) may hold; a live lockout is never dropped to make room.
    memory_counters_max_keys: Annotated[int, Field(ge=10, le=10_000_000)] = 100_000

    openai_api_key: SecretStr | None = None
    openai_base_url: HttpUrl | None = None
    openai_realtime_url: WsUrl | None = None
    openai_transcribe_model: str = "whisper-1"
    openai_translate_model: str = "gpt-4o-mini"
    openai_timeout: Seconds = 60.0
    # Fractional so tests can lower it to a few hundred KB; at most OpenAI's own 25 MB upload limit.
    openai_transcribe_max_mb: Annotated[float, Field(ge=0.05, le=25)] = 24.0
    deepgram_api_key: SecretStr | None = None
    deepgram_base_url: HttpUrl | None = None
    deepgram_model: str = "nova-3"
    deepgram_timeout: Seconds = 60.0
    deepseek_api_key: SecretStr | None = None
    deepseek_base_url: HttpUrl | None = None
    deepseek_model: str = "deepseek-chat"
    deepseek_timeout: Seconds = 60.0

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_base_url: HttpUrl | None = None
    twilio_stream_url: WsUrl | None = None
    twilio_validate_signatures: Bool = True

    # Realtime phone calls (/twilio/voice, /twilio/media-stream): the speech-to-speech model and voice unless the
    # tenant names its own, the model transcribing the caller, and the audio the provider speaks (pcmu passes
    # Twilio's μ-law through untouched; pcm16 converts to 24 kHz PCM16 both ways).
    realtime_model: str = "gpt-realtime"
    realtime_voice: str = "marin"
    realtime_transcribe_model: str = "gpt-4o-mini-transcribe"
    realtime_audio_format: Annotated[Literal["pcmu", "pcm16"], BeforeValidator(_lower)] = "pcmu"
    # A provider session is replaced (at a turn boundary) once it is this old, well before the provider's own
    # limit (60 min today); past it by REALTIME_HANDOFF_GRACE_S without a turn boundary, it is replaced anyway.
    realtime_max_session_s: Annotated[float, Field(ge=1, le=3600)] = 3300.0
    realtime_handoff_grace_s: Annotated[float, Field(ge=0.1, le=600)] = 240.0
    realtime_connect_timeout_s: Annotated[float, Field(ge=0.1, le=60)] = 10.0
    # Before a tenant's maximum call length the agent is asked to wrap up this long ahead; after `end_call` the
    # goodbye gets this long to play before the call is hung up regardless.
    realtime_wrapup_s: Annotated[float, Field(ge=1, le=600)] = 30.0
    realtime_hangup_grace_s: Annotated[float, Field(ge=0.5, le=120)] = 15.0
    realtime_health_log_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    realtime_max_calls: Annotated[int, Field(ge=1, le=100_000)] = 1000
    realtime_knowledge_results: Annotated[int, Field(ge=1, le=20)] = 3

    # Voice to-do assistant: an OpenAI-compatible chat model with function calling (SambaNova or another host is
    # configuration); each unset variable falls back to OPENAI_BASE_URL / OPENAI_API_KEY. Tool rounds per turn,
    # messages remembered per user, and the voice its answers are spoken in (OpenAI audio.speech).
    assistant_llm_base_url: HttpUrl | None = None
    assistant_llm_model: str = "gpt-4o-mini"
    assistant_llm_api_key: SecretStr | None = None
    assistant_llm_timeout: Seconds = 30.0
    assistant_max_tool_rounds: Annotated[int, Field(ge=1, le=20)] = 5
    assistant_memory_messages: Annotated[int, Field(ge=2, le=1000)] = 40
    openai_tts_model: str = "gpt-4o-mini-tts"
    openai_tts_voice: str = "alloy"

    allow_insecure_session_auth: Bool = False
    prices: Annotated[dict[str, float], NoDecode, BeforeValidator(_prices)] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES)
    )

    @model_validator(mode="before")
    @classmethod
    def _log_format_default(cls, values: Any) -> Any:
        if isinstance(values, dict) and not values.get("log_format"):
            env = _lower(values.get("app_env")) or "development"
            values = {**values, "log_format": "json" if env == "production" else "text"}
        return values

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default `os.environ`), raising one SettingsError for all problems."""
        env = os.environ if environ is None else environ
        names = {name.upper(): name for name in cls.model_fields}
        raw = {
            names[key.upper()]: value.strip()
            for key, value in env.items()
            if key.upper() in names and value.strip() != ""
        }
        problems = _cross_field_problems(raw)
        try:
            settings = cls.model_validate(raw)
        except ValidationError as exc:
            problems = _field_problems(exc) + problems
            raise SettingsError(problems) from None
        if problems:
            raise SettingsError(problems)
        return settings

    # ----- derived values ---------------------------------------------------------------------------

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

    @property
    def assistant_llm_url(self) -> str | None:
        """The assistant's chat endpoint: ASSISTANT_LLM_BASE_URL, else OPENAI_BASE_URL (None: OpenAI's own)."""
        return self.assistant_llm_base_url or self.openai_base_url

    @property
    def assistant_llm_secret(self) -> SecretStr | None:
        """The assistant's API key: ASSISTANT_LLM_API_KEY, else OPENAI_API_KEY (None: no chat model)."""
        return self.assistant_llm_api_key or self.openai_api_key

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

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name in ("database_url", "redis_url") and isinstance(value, str):
                value = redact_url(value)
            yield name, value


def secret(value: SecretStr | None) -> str:
    """The plain text of a configured secret ("" when unset): only at the point of use, never logged."""
    return value.get_secret_value() if value is not None else ""


def _field_problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        field = str(error["loc"][0]) if error["loc"] else "configuration"
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{field.upper()}: {message}")
    return problems


def _cross_field_problems(raw: Mapping[str, str]) -> list[str]:
    """Rules between variables, checked on the raw values so they are reported with the field errors."""
    problems = []
    app_env = raw.get("app_env", "development").lower()
    if app_env == "production":
        key = raw.get("secret_key", "")
        if key.lower() in PLACEHOLDER_SECRETS or len(key) < MIN_PRODUCTION_SECRET_CHARS:
            problems.append("SECRET_KEY: required in production (at least 32 random characters, no placeholder)")
        if raw.get("allow_insecure_session_auth", "").lower() in ("1", "true", "yes", "on"):
            problems.append("ALLOW_INSECURE_SESSION_AUTH: may not be true in production")
    if app_env != "development" and raw.get("twilio_validate_signatures", "").lower() in ("0", "false", "no", "off"):
        problems.append("TWILIO_VALIDATE_SIGNATURES: may be false only when APP_ENV=development")
    try:
        heartbeat = float(raw.get("calls_heartbeat_s", "0.5"))
        expiry = float(raw.get("calls_instance_expiry_s", "1.5"))
    except ValueError:
        pass  # reported with the field errors
    else:
        if expiry < 2 * heartbeat:
            problems.append("CALLS_INSTANCE_EXPIRY_S: must be at least twice CALLS_HEARTBEAT_S")
    return problems
