import pytest
from pydantic import SecretStr

from quart_app.settings import Settings, SettingsError, normalize_database_url


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
    for name in (
        "APP_ENV",
        "MAX_UPLOAD_MB",
        "DATABASE_URL",
        "CORS_ORIGINS",
        "ALLOW_INSECURE_SESSION_AUTH",
        "OPENAI_BASE_URL",
    ):
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
    assert isinstance(settings.openai_api_key, SecretStr)
    assert settings.openai_api_key.get_secret_value() == "sk-very-secret-value"
    assert str(settings.openai_api_key) == "**********"


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


def test_star_cannot_be_mixed_with_explicit_origins() -> None:
    assert Settings.from_env({"CORS_ORIGINS": "*"}).cors_origins == ("*",)
    with pytest.raises(SettingsError, match="CORS_ORIGINS"):
        Settings.from_env({"CORS_ORIGINS": "https://a.example,*"})


def test_each_provider_has_its_own_timeout_and_ranges_are_checked() -> None:
    settings = Settings.from_env({"OPENAI_TIMEOUT": "30", "DEEPGRAM_TIMEOUT": "120", "DEEPSEEK_TIMEOUT": "15"})
    assert (settings.openai_timeout, settings.deepgram_timeout, settings.deepseek_timeout) == (30, 120, 15)
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"DEEPGRAM_TIMEOUT": "0", "DATABASE_POOL_SIZE": "1000", "OPENAI_TRANSCRIBE_MAX_MB": "30"})
    assert {p.split(":")[0] for p in info.value.problems} == {
        "DEEPGRAM_TIMEOUT",
        "DATABASE_POOL_SIZE",
        "OPENAI_TRANSCRIBE_MAX_MB",
    }


def test_blank_values_count_as_unset_and_every_problem_is_reported_once() -> None:
    assert Settings.from_env({"MAX_UPLOAD_MB": "  ", "REDIS_URL": ""}).max_upload_mb == 100
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"APP_ENV": "production", "SECRET_KEY": "changeme", "MAX_UPLOAD_MB": "x"})
    assert sorted(p.split(":")[0] for p in info.value.problems) == ["MAX_UPLOAD_MB", "SECRET_KEY"]


def test_the_readme_documents_exactly_the_variables_settings_reads() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])
    }
    assert documented == {name.upper() for name in Settings.model_fields}
