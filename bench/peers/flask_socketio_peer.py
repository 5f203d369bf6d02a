"""Peer for bench/capacity.py: the seeds' stack, a minimal Flask-SocketIO app on eventlet under gunicorn.

    gunicorn -k eventlet -w 1 --worker-connections 20000 --chdir bench/peers flask_socketio_peer:app

Runs in its own virtual environment (bench/.peers/seeds, built by bench/capacity.py from SEEDS_REQUIREMENTS
there), never in the service's. Protocol shared by every capacity peer: GET /health/live -> {"status": "ok"};
"echo" acks its argument; "broadcast" emits "broadcast" with the same argument to every client of "/".
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_socketio import SocketIO  # type: ignore[import-not-found]

app = Flask(__name__)
socketio = SocketIO(app, async_mode="eventlet", cors_allowed_origins=None)


@app.get("/health/live")
def live() -> dict[str, str]:
    return {"status": "ok"}


@socketio.on("echo")
def echo(data: Any = None) -> Any:
    return data


@socketio.on("broadcast")
def broadcast(data: Any = None) -> None:
    socketio.emit("broadcast", data)
