"""The voice backend: one Quart app, with python-socketio mounted around it in `asgi.py`.

`create_app` lives in `quart_app.app`; it is re-exported lazily so that light users of the package
(`scripts/init_db.py`, the db modules) don't pay for importing Quart, Socket.IO and the provider SDKs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from quart import Quart

    from .settings import Settings


def create_app(settings: Settings | None = None) -> Quart:
    from .app import create_app as factory

    return factory(settings)
