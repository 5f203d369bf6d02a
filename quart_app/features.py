"""What a feature is to the process: built from the resources, started, drained, stopped.

A feature (jobs, live streams, calls, the assistant, monitoring) is one object built by a factory from
the `Resources` it needs. `serving` starts the features in the order the app factory lists them, and on
the way out drains them (most recent first) within one deadline, then stops them (most recent first).
Adding a feature means adding its factory to that list; nothing else in the process layer changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .resources import Resources


class Feature(Protocol):
    name: str

    async def start(self) -> None:
        """Start background tasks and register handlers (e.g. a Socket.IO namespace)."""

    async def drain(self, deadline: float) -> None:
        """Stop taking new work; finish or hand off live work by `deadline` (the loop's clock)."""

    async def stop(self) -> None:
        """Release everything; called once after drain, even if drain failed or timed out."""


FeatureFactory = Callable[[Resources], Feature]


class BaseFeature:
    """No-op steps, for features that need only some of them."""

    name = "feature"

    async def start(self) -> None:
        return None

    async def drain(self, deadline: float) -> None:
        return None

    async def stop(self) -> None:
        return None
