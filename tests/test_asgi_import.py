"""`import asgi` must not monkey-patch anything: the service is plain asyncio under hypercorn.

eventlet or gevent (pulled in by a dependency or an old Flask-SocketIO habit) would patch sockets,
threads and time behind asyncio's back. The import runs in a fresh interpreter that records the
stdlib objects before importing and compares them after.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, queue, select, socket, ssl, threading, time

watched = {
    "socket.socket": socket.socket,
    "threading.Thread": threading.Thread,
    "time.sleep": time.sleep,
    "select.select": select.select,
    "ssl.SSLContext": ssl.SSLContext,
    "queue.Queue": queue.Queue,
}
before = {name: (id(obj), getattr(obj, "__module__", None), obj.__qualname__) for name, obj in watched.items()}

import asgi  # noqa: E402

import engineio
import socketio

after_objects = {
    "socket.socket": socket.socket,
    "threading.Thread": threading.Thread,
    "time.sleep": time.sleep,
    "select.select": select.select,
    "ssl.SSLContext": ssl.SSLContext,
    "queue.Queue": queue.Queue,
}
after = {name: (id(obj), getattr(obj, "__module__", None), obj.__qualname__) for name, obj in after_objects.items()}
outer = asgi.application  # LivenessFirst (GET/HEAD /health/live), around Socket.IO's ASGIApp
app = outer.app
print(json.dumps({
    "outer": type(outer).__name__,
    "before": before,
    "after": after,
    "patch_modules": sorted(m for m in __import__("sys").modules if m.split(".")[0] in ("eventlet", "gevent")),
    "is_socketio_asgi": isinstance(app, socketio.ASGIApp) and isinstance(app, engineio.ASGIApp),
    "server_is_socketio": isinstance(app.engineio_server, socketio.AsyncServer),
    "async_mode": app.engineio_server.async_mode,
    "eio_async_mode": app.engineio_server.eio.async_mode,
    "on_startup": repr(app.on_startup),
    "on_shutdown": repr(app.on_shutdown),
    "other_app": type(app.other_asgi_app).__name__,
    "engineio_path": app.engineio_path,
}))
"""


def test_import_asgi_patches_nothing_and_wires_liveness_then_socketio_around_quart(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "APP_ENV": "test", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db"}
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    assert result["patch_modules"] == [], "eventlet/gevent must not even be imported"
    assert result["after"] == result["before"], "a stdlib object was replaced (monkey patching)"
    assert result["before"]["socket.socket"][1:] == ["socket", "socket"]
    assert result["before"]["time.sleep"][1:] == ["time", "sleep"]

    assert result["outer"] == "LivenessFirst"
    assert result["is_socketio_asgi"] and result["server_is_socketio"]
    assert result["async_mode"] == "asgi"
    assert result["eio_async_mode"] == "asgi"
    # Unset, so ASGIApp forwards lifespan events to Quart (whose while_serving opens every resource).
    assert result["on_startup"] == "None"
    assert result["on_shutdown"] == "None"
    assert result["other_app"] == "Quart"
    assert result["engineio_path"] == "/socket.io/"
