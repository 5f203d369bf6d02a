"""CORS: same-origin only by default; an explicit list is honoured with credentials; never "*" by default."""

from __future__ import annotations


async def test_no_cors_headers_by_default(make_app) -> None:
    async with make_app() as (app, client):
        response = await client.options(
            "/api/me", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert "Access-Control-Allow-Origin" not in response.headers
        plain = await client.get("/health/live", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in plain.headers


async def test_listed_origin_is_allowed_with_credentials_others_are_not(make_app) -> None:
    async with make_app(CORS_ORIGINS="https://app.example,http://localhost:3000") as (app, client):
        preflight = await client.options(
            "/api/keys",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key, content-type",
            },
        )
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
        assert "x-api-key" in preflight.headers["Access-Control-Allow-Headers"].lower()
        other = await client.get("/health/live", headers={"Origin": "https://evil.example"})
        assert other.headers.get("Access-Control-Allow-Origin") in (None, "")


async def test_explicit_wildcard_never_sends_credentials(make_app) -> None:
    async with make_app(CORS_ORIGINS="*") as (app, client):
        response = await client.get("/health/live", headers={"Origin": "https://anyone.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers.get("Access-Control-Allow-Credentials") != "true"
