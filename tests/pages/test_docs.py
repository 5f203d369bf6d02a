"""/docs renders Swagger UI from assets served by this service, offline, under a self-only CSP."""

from __future__ import annotations

import httpx

from tests.support.browser import visit
from tests.support.live_server import LiveServer


def test_docs_page_headers_and_assets_are_local(live_server: LiveServer) -> None:
    page = httpx.get(live_server.url + "/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "http" not in csp
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    for src in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/docs/assets/init.js"):
        assert src in page.text
        asset = httpx.get(live_server.url + src)
        assert asset.status_code == 200 and len(asset.content) > 100, src
    assert httpx.get(live_server.url + "/docs/assets/..%2Fsecret").status_code == 404
    assert httpx.get(live_server.url + "/docs/assets/index.html").status_code == 404


def test_docs_render_the_operations_in_chromium_with_no_network_but_loopback(live_server: LiveServer) -> None:
    seen = visit(live_server.url + "/docs", name="docs-desktop")
    assert "swagger-ui" in seen.dom
    for operation in ("/transcriptions/jobs", "/api/transcriptions", "/api/auth/pin", "/health"):
        assert operation in seen.dom, f"{operation} not rendered"
    assert seen.off_loopback() == [], seen.off_loopback()
    assert any(u.endswith("/openapi.json") for u in seen.requested), seen.requested
    assert seen.screenshot is not None
