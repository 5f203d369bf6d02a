"""ASGI entry point: python-socketio's ASGIApp around the Quart app.

ASGIApp's own on_startup/on_shutdown stay unset so that it forwards lifespan events to Quart, which
opens and closes every resource in `while_serving`.

    hypercorn --config hypercorn.toml --bind 0.0.0.0:$PORT asgi:application
"""

import socketio

from quart_app import create_app

app = create_app()
application = socketio.ASGIApp(app.extensions["socketio"], other_asgi_app=app, socketio_path="socket.io")
