"""/openapi.json is a valid OpenAPI document that lists exactly the REST routes the app serves; /docs is HTML."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

# `<name>`, `<converter:name>` and `<any(a, b):name>` all render as `{name}` in quart-schema's output
# (an any() converter becomes an enum on the path parameter, checked below).
_VARIABLE = re.compile(r"<(?:[^<>]*:)?(\w+)>")
_NOT_REST = {"static", "openapi", "swagger_ui"}  # the document and its viewer, and static files
_HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
_PAGES = {"docs", "dashboard", "voice_assistant", "voice_assistant_prefixed"}  # HTML pages (quart_app/pages/)


def app_operations(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(OpenAPI path, method) for every REST rule in the app's URL map."""
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.websocket or rule.endpoint in _NOT_REST or rule.endpoint.split(".")[0] in _PAGES:
            continue
        path = _VARIABLE.sub(r"{\1}", rule.rule)
        found.update((path, m.lower()) for m in rule.methods or () if m.lower() in _HTTP_METHODS)
    return found


def spec_operations(spec: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in spec["paths"].items() for method in item if method in _HTTP_METHODS}


async def test_openapi_is_valid_and_covers_every_route(make_app) -> None:
    async with make_app() as (app, client):
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        spec = await response.get_json()

    validate(spec)  # raises OpenAPIValidationError with the offending pointer
    assert spec["openapi"].startswith("3.")
    served, documented = app_operations(app), spec_operations(spec)
    assert len(served) > 10  # the walk found the app's routes, not an empty map
    assert served - documented == set(), "routes missing from /openapi.json"
    assert documented - served == set(), "/openapi.json documents routes the app does not serve"


async def test_each_provider_route_is_its_own_operation(make_app) -> None:
    """Client generators make one method per operation: no templated provider path, each its own summary."""
    async with make_app() as (_, client):
        spec = await (await client.get("/openapi.json")).get_json()
    assert not any("{route}" in path or "{provider}" in path for path in spec["paths"])
    operations = {
        path: spec["paths"][path]["post"]
        for path in (
            "/transcriptions/deepgram",
            "/transcriptions/whisper",
            "/translations/openai",
            "/translations/deepseek",
        )
    }
    ids = {operation["operationId"] for operation in operations.values()}
    summaries = {operation["summary"] for operation in operations.values()}
    assert len(ids) == len(summaries) == 4
    assert "Deepgram" in operations["/transcriptions/deepgram"]["summary"]
    assert "OpenAI" in operations["/transcriptions/whisper"]["summary"]
    assert "OpenAI" in operations["/translations/openai"]["summary"]
    assert "DeepSeek" in operations["/translations/deepseek"]["summary"]
    for path, operation in operations.items():
        assert not [p for p in operation.get("parameters", []) if p["in"] == "path"], path
        content = operation["requestBody"]["content"]
        schema = next(iter(content.values()))["schema"]
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        fields = set(schema["properties"])
        if path.startswith("/transcriptions/"):
            assert "multipart/form-data" in content and fields == {"audio", "language"}, (path, fields)
            headers = {p["name"].lower() for p in operation["parameters"] if p["in"] == "header"}
            assert "idempotency-key" in headers, path
        else:
            assert "application/json" in content and {"text", "target_language"} <= fields, (path, fields)
    # Each upload operation documents its own request schema (what generators name the argument after).
    upload_schemas = {
        next(iter(operations[p]["requestBody"]["content"].values()))["schema"]["title"]
        for p in ("/transcriptions/deepgram", "/transcriptions/whisper")
    }
    assert upload_schemas == {"DeepgramUpload", "WhisperUpload"}
    jobs = spec["paths"]["/transcriptions/jobs"]["post"]
    query = {p["name"]: p for p in jobs["parameters"] if p["in"] == "query"}
    assert "provider" in query and "before the upload is read" in query["provider"]["description"]


async def test_route_prefix_copies_are_documented_too(make_app) -> None:
    async with make_app(APP_ROUTE_PREFIX="/voice") as (app, client):
        spec = await (await client.get("/openapi.json")).get_json()
    assert ("/voice/twilio/status", "post") in app_operations(app)
    assert app_operations(app) <= spec_operations(spec)


async def test_docs_serve_swagger_ui_html(make_app) -> None:
    async with make_app() as (_, client):
        response = await client.get("/docs")
        body = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "swagger-ui" in body.lower() and "/openapi.json" in body
