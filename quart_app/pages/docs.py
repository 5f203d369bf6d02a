"""GET /docs: Swagger UI for /openapi.json, its assets served from the pinned swagger-ui-bundle-v2 wheel.

quart-schema's own page loads Swagger UI from a CDN and starts it with an inline script; this one loads
nothing from another host and runs no inline script, so it works offline under a self-only CSP.
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response
from quart_schema import hide
from swagger_ui_bundle import swagger_ui_path

from .assets import send_asset, with_policy

blueprint = Blueprint("docs", __name__)

SWAGGER_DIR = Path(str(swagger_ui_path))
OUR_DIR = Path(__file__).parent / "static" / "docs"
# name -> the directory it is served from; nothing else under either directory is reachable.
ASSETS = {"swagger-ui-bundle.js": SWAGGER_DIR, "swagger-ui.css": SWAGGER_DIR, "init.js": OUR_DIR}
# Swagger UI draws some icons from data: URIs in its stylesheet and sets inline style attributes.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Voice backend API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-spec-url="/openapi.json"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>
"""


@blueprint.get("/docs")
@hide
async def page() -> Response:
    """Swagger UI for this service's OpenAPI document."""
    return with_policy(Response(PAGE, content_type="text/html; charset=utf-8"), CSP)


@blueprint.get("/docs/assets/<name>")
@hide
async def asset(name: str) -> Response:
    """Swagger UI's own files from the installed package, and our starter script."""
    return await send_asset(ASSETS, name, cache_control="public, max-age=86400")
