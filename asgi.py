"""ASGI entry point: `/health/live` answered first, then python-socketio's ASGIApp around the Quart app.

`quart_app.app.asgi_application` builds it: LivenessFirst (quart_app/web/live.py) answers GET/HEAD
`/health/live` without Socket.IO or Quart and passes every other scope through, lifespan included.
ASGIApp's own on_startup/on_shutdown stay unset so that it forwards lifespan events to Quart, which
opens and closes every resource in `while_serving`.

    hypercorn --config hypercorn.toml --bind 0.0.0.0:$PORT asgi:application
"""

from quart_app import create_app
from quart_app.app import asgi_application

app = create_app()
application = asgi_application(app)
