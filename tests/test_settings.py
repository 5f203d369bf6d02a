import pytest

from quart_app.settings import Secret, Settings, SettingsError, normalize_database_url


def test_defaults_boot_without_any_provider_key() -> None:
    settings = Settings.from_env({})
    assert settings.app_env == "development"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.cors_origins == ()
    assert settings.max_upload_mb == 100
    assert all(not p.configured for p in settings.providers().values())
    assert settings.providers()["openai"].missing == ("OPENAI_API_KEY",)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("sqlite+aiosqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
    ],
)
def test_database_url_forms(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected
    assert Settings.from_env({"DATABASE_URL": given}).database_url == expected


def test_every_invalid_variable_is_named_in_one_error() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(
            {
                "APP_ENV": "staging",
                "MAX_UPLOAD_MB": "lots",
                "DATABASE_URL": "mysql://x/y",
                "CORS_ORIGINS": "example.com",
                "ALLOW_INSECURE_SESSION_AUTH": "maybe",
                "OPENAI_BASE_URL": "ftp://nope",
            }
        )
    text = str(info.value)
    for name in ("APP_ENV", "MAX_UPLOAD_MB", "DATABASE_URL", "CORS_ORIGINS", "ALLOW_INSECURE_SESSION_AUTH",
                 "OPENAI_BASE_URL"):
        assert name in text
    assert len(info.value.problems) == 6


@pytest.mark.parametrize("key", [None, "changeme", "secret", "short-but-not-placeholder"])
def test_production_refuses_missing_or_placeholder_secret_key(key: str | None) -> None:
    env = {"APP_ENV": "production"}
    if key is not None:
        env["SECRET_KEY"] = key
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings.from_env(env)


def test_production_accepts_a_real_secret_key() -> None:
    settings = Settings.from_env({"APP_ENV": "production", "SECRET_KEY": "k" * 48})
    assert settings.log_format == "json"


def test_secrets_are_redacted_from_repr() -> None:
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": "sk-very-secret-value",
            "TWILIO_AUTH_TOKEN": "twilio-token-value",
            "DATABASE_URL": "postgres://user:dbpassword@db.internal:5432/app",
            "REDIS_URL": "redis://:redispassword@cache:6379/0",
        }
    )
    text = repr(settings)
    for leaked in ("sk-very-secret-value", "twilio-token-value", "dbpassword", "redispassword"):
        assert leaked not in text
    assert "db.internal" in text
    assert isinstance(settings.openai_api_key, Secret)
    assert settings.openai_api_key.get() == "sk-very-secret-value"
    assert str(settings.openai_api_key) == "Secret('**********')"


def test_cors_is_never_wildcard_by_default_and_lists_parse() -> None:
    assert Settings.from_env({}).cors_origins == ()
    settings = Settings.from_env({"CORS_ORIGINS": "https://a.example, http://localhost:3000/"})
    assert settings.cors_origins == ("https://a.example", "http://localhost:3000")


def test_route_prefix_and_signature_switch() -> None:
    assert Settings.from_env({"APP_ROUTE_PREFIX": "/sambanova_todo/"}).app_route_prefix == "/sambanova_todo"
    with pytest.raises(SettingsError, match="APP_ROUTE_PREFIX"):
        Settings.from_env({"APP_ROUTE_PREFIX": "no-slash"})
    with pytest.raises(SettingsError, match="TWILIO_VALIDATE_SIGNATURES"):
        Settings.from_env({"APP_ENV": "production", "SECRET_KEY": "k" * 48, "TWILIO_VALIDATE_SIGNATURES": "false"})
    assert Settings.from_env({"TWILIO_VALIDATE_SIGNATURES": "false"}).twilio_validate_signatures is False
