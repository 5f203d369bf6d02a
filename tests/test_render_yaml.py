"""render.yaml: valid against Render's Blueprint schema, and saying what this service needs to run there."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from quart_app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BLUEPRINT = ROOT / "render.yaml"
SCHEMA_NAME = "render.yaml.schema.json"
# CI clones the repo next to `shared/`; on the development machine it lives under /work.
SCHEMA_CANDIDATES = (ROOT.parent / "shared" / "schemas" / SCHEMA_NAME, Path("/work/shared/schemas") / SCHEMA_NAME)

PROVIDER_SECRETS = (
    "OPENAI_API_KEY",
    "DEEPGRAM_API_KEY",
    "DEEPSEEK_API_KEY",
    "AUTH0_DOMAIN",
    "AUTH0_AUDIENCE",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "PUBLIC_BASE_URL",
    "CORS_ORIGINS",
)
# The only variables allowed a literal value in the file; everything else is generated, linked or prompted.
LITERAL_OK = {"APP_ENV": "production", "LOG_FORMAT": "json", "TRUSTED_PROXY_COUNT": "1"}
# Shapes of real credentials that must never appear in the file.
CREDENTIAL_PATTERNS = (
    r"sk-[A-Za-z0-9_-]{16,}",  # OpenAI / DeepSeek
    r"\bAC[0-9a-f]{32}\b",  # Twilio account SID
    r"\b[0-9a-f]{32,}\b",  # long hex tokens (Twilio auth token, Deepgram key)
    r"[A-Za-z0-9+/]{40,}={0,2}",  # long base64 blobs
    r"(postgres(ql)?|rediss?)://\S+",  # connection strings, which embed passwords
)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (plain PyYAML keeps the last one silently)."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def schema_path() -> Path:
    for candidate in SCHEMA_CANDIDATES:
        if candidate.is_file():
            return candidate
    pytest.fail(f"Render schema not found; looked in: {', '.join(str(c) for c in SCHEMA_CANDIDATES)}")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    # utf-8-sig: the published schema file starts with a byte-order mark.
    return json.loads(schema_path().read_text(encoding="utf-8-sig"))


@pytest.fixture(scope="module")
def blueprint() -> dict[str, Any]:
    return yaml.load(BLUEPRINT.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)


def validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """The validator for the draft the schema names in `$schema`, never a silent default."""
    cls = jsonschema.validators.validator_for(schema, default=None)
    assert cls is not None, f"unknown $schema {schema.get('$schema')!r}"
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(schema: dict[str, Any], document: Any) -> list[str]:
    errors = sorted(validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def web_service(blueprint: dict[str, Any]) -> dict[str, Any]:
    webs = [s for s in blueprint["services"] if s.get("type") == "web"]
    assert len(webs) == 1, "exactly one web service"
    return webs[0]


def env_vars(blueprint: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = web_service(blueprint)["envVars"]
    keys = [e["key"] for e in entries]
    assert len(keys) == len(set(keys)), f"duplicate env var keys: {keys}"
    return {e["key"]: e for e in entries}


# ---------------------------------------------------------------------------------------------- schema


def test_schema_is_2020_12(schema: dict[str, Any]) -> None:
    assert validator(schema).__class__ is jsonschema.Draft202012Validator


def test_blueprint_is_valid_against_render_schema(schema: dict[str, Any], blueprint: dict[str, Any]) -> None:
    assert schema_errors(schema, blueprint) == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda bp: bp["services"][0].update(startComand="typo"),  # unknown key in a service
        lambda bp: bp.update(servics=[]),  # unknown top-level key
        lambda bp: bp["services"][1].pop("ipAllowList"),  # keyvalue without its allow list
        lambda bp: bp["services"][0]["envVars"].append({"key": "X", "fromDatabase": {"name": "db"}}),
    ],
)
def test_schema_check_is_strict(schema: dict[str, Any], blueprint: dict[str, Any], mutate: Any) -> None:
    # Proves the validation above can fail: a broken copy of the blueprint is rejected.
    broken = copy.deepcopy(blueprint)
    mutate(broken)
    assert schema_errors(schema, broken)


def test_duplicate_keys_are_rejected() -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key"):
        yaml.load("a: 1\na: 2\n", Loader=_UniqueKeyLoader)


# -------------------------------------------------------------------------------------------- commands


def test_web_service_commands(blueprint: dict[str, Any]) -> None:
    web = web_service(blueprint)
    # Docker: the image carries ffmpeg, which Render's native Python runtime cannot install.
    assert web["runtime"] == "docker"
    assert web["dockerfilePath"] == "./Dockerfile" and (ROOT / "Dockerfile").is_file()
    assert "buildCommand" not in web and "startCommand" not in web  # not used by docker services
    assert web["preDeployCommand"] == "python scripts/init_db.py --safe"
    assert shlex.split(web["dockerCommand"]) == [
        "sh", "-c", "exec hypercorn --config hypercorn.toml --bind 0.0.0.0:$PORT asgi:application",
    ]  # fmt: skip
    assert web["healthCheckPath"] == "/health"
    # The drain (DRAIN_TIMEOUT_S) plus hypercorn's graceful_timeout must fit in the shutdown delay.
    drain = Settings.from_env({}).drain_timeout_s
    graceful = float(re.search(r"^graceful_timeout\s*=\s*(\d+)", (ROOT / "hypercorn.toml").read_text(), re.M)[1])
    assert web["maxShutdownDelaySeconds"] >= drain + graceful
    # preDeployCommand does not run on Render's free instance type.
    assert web.get("plan") not in (None, "free")


def test_commands_point_at_files_that_exist() -> None:
    assert (ROOT / "requirements.txt").is_file()
    assert (ROOT / "requirements.lock").is_file()
    assert (ROOT / "scripts" / "init_db.py").is_file()
    assert (ROOT / "hypercorn.toml").is_file()
    assert re.search(r"^application\s*=", (ROOT / "asgi.py").read_text(), re.MULTILINE)
    assert '@blueprint.get("/health")' in (ROOT / "quart_app" / "api" / "health.py").read_text()


# --------------------------------------------------------------------------------------- environment


def test_python_version_comes_from_the_image(blueprint: dict[str, Any]) -> None:
    assert "PYTHON_VERSION" not in env_vars(blueprint)  # read by the native runtime only
    assert re.search(r"^FROM python:3\.11-slim", (ROOT / "Dockerfile").read_text(), re.M)


def test_plain_settings(blueprint: dict[str, Any]) -> None:
    env = env_vars(blueprint)
    assert env["APP_ENV"]["value"] == "production"
    assert env["LOG_FORMAT"]["value"] == "json"


def test_database_and_key_value_are_linked(blueprint: dict[str, Any]) -> None:
    env = env_vars(blueprint)
    database = env["DATABASE_URL"]["fromDatabase"]
    assert database["property"] == "connectionString"
    assert database["name"] in {d["name"] for d in blueprint["databases"]}

    redis = env["REDIS_URL"]["fromService"]
    assert (redis["type"], redis["property"]) == ("keyvalue", "connectionString")
    key_values = {s["name"]: s for s in blueprint["services"] if s["type"] == "keyvalue"}
    assert redis["name"] in key_values
    assert key_values[redis["name"]]["ipAllowList"] == [], "Key Value must accept internal connections only"


def test_everything_in_one_region(blueprint: dict[str, Any]) -> None:
    # The service reaches the database and Key Value over the private network only within a region.
    regions = {r.get("region") for r in [*blueprint["services"], *blueprint["databases"]]}
    assert len(regions) == 1 and None not in regions, regions


def test_secret_key_is_generated(blueprint: dict[str, Any]) -> None:
    secret = env_vars(blueprint)["SECRET_KEY"]
    assert secret.get("generateValue") is True
    assert "value" not in secret and "previewValue" not in secret


@pytest.mark.parametrize("key", PROVIDER_SECRETS)
def test_provider_settings_are_prompted_not_stored(blueprint: dict[str, Any], key: str) -> None:
    entry = env_vars(blueprint)[key]
    assert entry == {"key": key, "sync": False}


def test_no_literal_secret_values(blueprint: dict[str, Any]) -> None:
    for key, entry in env_vars(blueprint).items():
        if "value" in entry or "previewValue" in entry:
            assert key in LITERAL_OK, f"{key} has a literal value in render.yaml"
            assert entry["value"] == LITERAL_OK[key]
    text = BLUEPRINT.read_text(encoding="utf-8")
    for pattern in CREDENTIAL_PATTERNS:
        assert not re.search(pattern, text), f"render.yaml contains something shaped like a credential: {pattern}"


def test_every_variable_is_one_the_service_reads(blueprint: dict[str, Any]) -> None:
    # Catches a misspelt key, which Render would happily set and the service would silently ignore.
    read = {name.upper() for name in Settings.model_fields}
    for key in env_vars(blueprint):
        assert key in read, f"{key} is not read by quart_app/settings.py"


def test_blueprint_environment_passes_settings_validation(blueprint: dict[str, Any]) -> None:
    """With the values Render fills in (shaped like the real ones), production settings load cleanly."""
    env = {key: entry["value"] for key, entry in env_vars(blueprint).items() if "value" in entry}
    env.update(
        {
            "SECRET_KEY": "a" * 43 + "=",  # generateValue: base64 of 256 random bits
            "DATABASE_URL": "postgresql://voice:pw@dpg-example-a:5432/voice",
            "REDIS_URL": "redis://red-example:6379",
        }
    )
    settings = Settings.from_env(env)
    assert settings.app_env == "production"
    assert settings.log_format == "json"
    assert settings.database_url.startswith("postgresql+asyncpg://")
