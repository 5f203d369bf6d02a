"""The pages' responses, header by header: each page under its own CSP, each whitelisted asset as it is on disk.

Pins what quart_app/pages/assets.py serves for /dashboard, /docs and /webrtc/voice-assistant (also under
APP_ROUTE_PREFIX): status, body and every header, so a change to the shared helper cannot alter one of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from quart.testing import QuartClient

from quart_app.pages import dashboard, docs, voice_assistant

PREFIX = "/voice"
# Set by quart_app/web/headers.py on every response.
COMMON = {"referrer-policy": "no-referrer", "x-content-type-options": "nosniff", "x-frame-options": "DENY"}
# Per response, and different each time: checked for presence only.
VARYING = {"x-request-id"}
# Set by send_from_directory for a file: checked for presence only (they follow the file's mtime and the clock).
FILE_VARYING = {"etag", "expires", "last-modified"}
DEFAULT_CSP = "frame-ancestors 'none'"
JS, CSS, HTML = "text/javascript; charset=utf-8", "text/css; charset=utf-8", "text/html; charset=utf-8"


def expected_headers(content_type: str, length: int, **headers: str) -> dict[str, str]:
    return {
        **COMMON,
        "content-type": content_type,
        "content-length": str(length),
        "content-security-policy": DEFAULT_CSP,
        "cache-control": "no-store",
        **{name.replace("_", "-"): value for name, value in headers.items()},
    }


async def check(
    client: QuartClient, method: str, path: str, body: bytes, expected: dict[str, str], *, file: bool
) -> None:
    """`method path` answers 200 with `body` and exactly the `expected` headers (and the varying ones)."""
    response = await client.open(path, method=method)
    assert response.status_code == 200, path
    assert await response.get_data() == body, path
    got = {name.lower(): value for name, value in response.headers.items()}
    varying = VARYING | (FILE_VARYING if file else set())
    assert varying <= got.keys(), sorted(got)
    assert {k: v for k, v in got.items() if k not in varying} == expected, path


def _type(name: str) -> str:
    return {".js": JS, ".css": CSS, ".html": HTML}[Path(name).suffix]


PAGES = [
    (
        "/dashboard",
        dashboard.STATIC / "index.html",
        {"content_security_policy": dashboard.CSP, "cache_control": "no-cache"},
    ),
    (
        "/webrtc/voice-assistant",
        voice_assistant.PAGE_DIR / "index.html",
        {
            "content_security_policy": voice_assistant.CSP,
            "permissions_policy": "microphone=(self), camera=(), geolocation=()",
            "cache_control": "no-cache",
        },
    ),
    (
        PREFIX + "/webrtc/voice-assistant",
        voice_assistant.PAGE_DIR / "index.html",
        {
            "content_security_policy": voice_assistant.CSP,
            "permissions_policy": "microphone=(self), camera=(), geolocation=()",
            "cache_control": "no-cache",
        },
    ),
]
ASSETS = [
    *[(f"/dashboard/assets/{n}", folder / n, "no-cache") for n, folder in dashboard.ASSETS.items()],
    *[(f"/docs/assets/{n}", folder / n, "public, max-age=86400") for n, folder in docs.ASSETS.items()],
    *[
        (f"{root}/webrtc/voice-assistant/assets/{n}", folder / n, "no-cache")
        for root in ("", PREFIX)
        for n, folder in voice_assistant.ASSETS.items()
    ],
]
MISSING = [
    f"{root}/assets/{name}"
    for root in ("/dashboard", "/docs", "/webrtc/voice-assistant", PREFIX + "/webrtc/voice-assistant")
    for name in ("index.html", "..%2Fsecret.py", "nope.js", "socket.io.min.js.map")
] + ["/webrtc/voice-assistant/assets/dashboard.js", "/docs/assets/dashboard.js"]


@pytest.fixture
async def client(make_app: Callable[..., Any]) -> AsyncIterator[QuartClient]:
    async with make_app(APP_ROUTE_PREFIX=PREFIX) as (_, client):
        yield client


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_pages_answer_with_their_own_policy_and_headers(client: QuartClient, method: str) -> None:
    for path, file, headers in PAGES:
        body = file.read_bytes()
        await check(client, method, path, body, expected_headers(HTML, len(body), **headers), file=True)
    page = docs.PAGE.encode()
    expected = expected_headers(HTML, len(page), content_security_policy=docs.CSP)
    await check(client, method, "/docs", page, expected, file=False)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_whitelisted_assets_are_served_as_on_disk(client: QuartClient, method: str) -> None:
    for path, file, cache_control in ASSETS:
        body = file.read_bytes()
        expected = expected_headers(_type(file.name), len(body), cache_control=cache_control)
        await check(client, method, path, body, expected, file=True)


async def test_anything_else_under_assets_is_404(client: QuartClient) -> None:
    for path in MISSING:
        response = await client.get(path)
        assert response.status_code == 404, path
        expected = expected_headers("application/json", len(await response.get_data()))
        got = {name.lower(): value for name, value in response.headers.items() if name.lower() not in VARYING}
        assert got == expected, path
