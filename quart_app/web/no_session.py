"""No cookie session: Quart's default opens (and saves) a signed cookie session on every request.

No route uses `quart.session`: API callers authenticate with a header (Auth0 JWT, API key or the `vst_`
token of the PIN sign-in), and Socket.IO keeps its own per-connection session. `NoSession` never reads a
cookie and never writes one, so no answer carries `Set-Cookie` or `Vary: Cookie` because of a session.
Reading `quart.session` gives an empty mapping; writing to it raises instead of silently losing the value.
"""

from __future__ import annotations

from typing import Any, NoReturn

from quart import Quart
from quart.sessions import NullSession, SessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket, Response
from werkzeug.wrappers import Response as WerkzeugResponse


class NoCookieSession(NullSession):
    """The empty, read-only session every request and websocket gets."""

    def _fail(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("This service has no cookie session (quart_app/web/no_session.py).")

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _fail


class NoSession(SessionInterface):
    """A session interface that opens an empty read-only session and never saves one (no cookie either way)."""

    null_session_class = NoCookieSession

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> SessionMixin | None:
        return NoCookieSession()

    async def save_session(
        self, app: Quart, session: SessionMixin, response: Response | WerkzeugResponse | None
    ) -> None:
        return None
