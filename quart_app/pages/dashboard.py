"""GET /dashboard: the live operations dashboard (admins), served from this package under a self-only CSP.

Plain HTML, CSS and JavaScript (no inline script or style, nothing from another host): the page signs in with
an admin API key or token kept in session storage, fetches `/api/monitoring/snapshot`, then follows
`monitoring_update` on the `/monitoring` namespace with the Socket.IO client vendored next to it
(static/dashboard/socket.io.min.js, socket.io-client 4.8.4 as pinned in tests/node/package.json).
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, abort, send_from_directory
from quart_schema import hide

blueprint = Blueprint("dashboard", __name__)

STATIC = Path(__file__).parent / "static" / "dashboard"
ASSETS = frozenset({"dashboard.js", "dashboard.css", "socket.io.min.js"})  # nothing else there is served
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@blueprint.get("/dashboard")
@hide
async def page() -> Response:
    """The operations dashboard (sign-in happens in the page)."""
    response = await send_from_directory(STATIC, "index.html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/dashboard/assets/<name>")
@hide
async def asset(name: str) -> Response:
    """The dashboard's script, stylesheet and the vendored Socket.IO client."""
    if name not in ASSETS:
        abort(404)
    response = await send_from_directory(STATIC, name)
    response.headers["Cache-Control"] = "no-cache"
    return response
