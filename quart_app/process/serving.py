"""Serving: open the resources, start the features, and on the way out drain, stop and close them.

    async with serving(settings, sio, secret_key, factories) as state: ...   # state.resources, .features

Exit order (an AsyncExitStack, last in first out): drain, then each feature's stop (most recent
first), then the resources close (Socket.IO, database, Redis, providers, HTTP session).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import socketio

from ..features import Feature, FeatureFactory
from ..resources import Resources, open_resources
from ..settings import Settings
from .drain import Drainer, announce

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingState:
    resources: Resources
    features: list[Feature]
    drainer: Drainer


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, sio: socketio.AsyncServer, secret_key: str, factories: Sequence[FeatureFactory]
) -> AsyncIterator[ServingState]:
    async with contextlib.AsyncExitStack() as stack:
        resources = await stack.enter_async_context(open_resources(settings, sio, secret_key))
        features: list[Feature] = []
        for factory in factories:
            feature = factory(resources)
            await feature.start()
            stack.push_async_callback(_stop, feature)
            features.append(feature)
        drainer = Drainer(resources, features, settings.drain_timeout_s)
        stack.push_async_callback(drainer.drain)
        stack.callback(drainer.remove_triggers)
        drainer.install_triggers()
        await announce(resources, "instance_up")
        yield ServingState(resources, features, drainer)
    log.info("shutdown complete")


async def _stop(feature: Feature) -> None:
    try:
        await feature.stop()
    except Exception:
        log.exception("feature %s failed to stop", feature.name)
