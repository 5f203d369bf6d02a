"""What a request handler reaches while the app is serving: the resources and the running features."""

from __future__ import annotations

from typing import TypeVar

from quart import current_app

from ..errors import APIError
from ..resources import Resources

F = TypeVar("F")

RESOURCES = "resources"
FEATURES = "features"
DRAINER = "drainer"  # process.drain.Drainer: tests and operators may start the drain by hand


def resources() -> Resources:
    """The process's resources; 503 outside `while_serving` (e.g. Quart's plain test client)."""
    found = current_app.extensions.get(RESOURCES)
    if not isinstance(found, Resources):
        raise APIError(503, "not_serving", "The service is starting or stopping; retry shortly.")
    return found


def feature(kind: type[F]) -> F:
    """The running feature of class `kind`; 503 when it is not running in this process."""
    for candidate in current_app.extensions.get(FEATURES, ()):
        if isinstance(candidate, kind):
            return candidate
    raise APIError(503, "feature_unavailable", f"{kind.__name__} is not running on this server.")
