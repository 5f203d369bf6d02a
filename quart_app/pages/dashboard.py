"""GET /dashboard: the live operations dashboard (admins), served from this package under a self-only CSP.

Plain HTML, CSS and JavaScript (no inline script or style, nothing from another host): the page signs in with
an admin API key or token kept in session storage, fetches `/api/monitoring/snapshot`, then follows
`monitoring_update` on the `/monitoring` namespace with the Socket.IO client vendored next to it
(static/dashboard/socket.io.min.js, socket.io-client 4.8.4 as pinned in tests/node/package.json).
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response
from quart_schema import hide

from .assets import send_asset, send_page

blueprint = Blueprint("dashboard", __name__)

STATIC = Path(__file__).parent / "static" / "dashboard"
# name -> the folder it is served from; nothing else there is served.
ASSETS = {name: STATIC for name in ("dashboard.js", "dashboard.css", "socket.io.min.js")}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@blueprint.get("/dashboard")
@hide
async def page() -> Response:
    """The operations dashboard (sign-in happens in the page)."""
    return await send_page(STATIC, "index.html", CSP, {"Cache-Control": "no-cache"})


@blueprint.get("/dashboard/assets/<name>")
@hide
async def asset(name: str) -> Response:
    """The dashboard's script, stylesheet and the vendored Socket.IO client."""
    return await send_asset(ASSETS, name, cache_control="no-cache")
