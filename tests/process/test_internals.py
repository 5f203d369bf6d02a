"""The drain relies on private hypercorn / python-socketio / python-engineio internals: fail loudly if an
upgrade removed one (see quart_app/process/internals.py)."""

from quart_app.process import internals


def test_every_private_internal_the_drain_uses_is_still_there() -> None:
    assert internals.check() == []
