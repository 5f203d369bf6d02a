"""GET /webrtc/voice-assistant: the voice to-do assistant page, served from this package under a self-only CSP.

Plain HTML, CSS and JavaScript (no inline script or style, nothing from another host). The page signs in with
an e-mail or phone and a PIN over the `/voice` Socket.IO namespace, records with MediaRecorder (hold the mic
button, or click it once to start and again to stop), shows the conversation and the live to-do list, and
plays the spoken reply from a Blob URL (hence `media-src 'self' blob:`). The Socket.IO client is the one
vendored for the dashboard (static/dashboard/socket.io.min.js, socket.io-client 4.8.4 as pinned in
tests/node/package.json), served here too.

The app also registers this blueprint under APP_ROUTE_PREFIX: the page refers to its assets relatively, so
they follow the prefix it was served under, while Socket.IO stays at `/socket.io/` (the app does not mount it
under the prefix).
"""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response
from quart_schema import hide

from .assets import send_asset, send_page

blueprint = Blueprint("voice_assistant", __name__)

STATIC = Path(__file__).parent / "static"
PAGE_DIR = STATIC / "voice"
# Nothing else in those folders is served.
ASSETS = {
    "voice.js": PAGE_DIR,
    "voice.css": PAGE_DIR,
    "socket.io.min.js": STATIC / "dashboard",
}
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "media-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# The microphone for this page only; no camera, no geolocation.
PERMISSIONS = "microphone=(self), camera=(), geolocation=()"


@blueprint.get("/webrtc/voice-assistant")
@hide
async def page() -> Response:
    """The voice to-do assistant (sign-in happens in the page)."""
    return await send_page(
        PAGE_DIR, "index.html", CSP, {"Permissions-Policy": PERMISSIONS, "Cache-Control": "no-cache"}
    )


@blueprint.get("/webrtc/voice-assistant/assets/<name>")
@hide
async def asset(name: str) -> Response:
    """The page's script and stylesheet, and the vendored Socket.IO client."""
    return await send_asset(ASSETS, name, cache_control="no-cache")
