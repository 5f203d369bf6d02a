"""/openapi.json is a valid OpenAPI document that lists exactly the REST routes the app serves; /docs is HTML."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

# `<name>`, `<converter:name>` and `<any(a, b):name>` all render as `{name}` in quart-schema's output
# (an any() converter becomes an enum on the path parameter, checked below).
_VARIABLE = re.compile(r"<(?:[^<>]*:)?(\w+)>")
_NOT_REST = {"static", "openapi", "swagger_ui"}  # the document and its viewer, and static files
_HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
_PAGES = {"docs"}  # HTML pages (quart_app/pages/) and their assets


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
    # The two enumerated routes keep their choices, so clients and fuzzers only try real providers.
    for path, choices in (
        ("/transcriptions/{route}", {"deepgram", "whisper"}),
        ("/translations/{provider}", {"openai", "deepseek"}),
    ):
        (parameter,) = [p for p in spec["paths"][path]["post"]["parameters"] if p["in"] == "path"]
        assert set(parameter["schema"]["enum"]) == choices


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
