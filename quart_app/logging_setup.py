"""Logging to stdout as JSON or text, with known secret values scrubbed from every record."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

from .settings import Secret, Settings


class SecretScrubber(logging.Filter):
    """Replaces any configured secret value that ends up in a message (an echoed header, a URL)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        scrubbed = message
        for secret in self.secrets:
            scrubbed = scrubbed.replace(secret, "***")
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "sid", "call_sid"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings) -> None:
    secrets = [
        value.get()
        for value in vars(settings).values()
        if isinstance(value, Secret)
    ]
    handler = logging.StreamHandler(sys.stdout)
    if settings.log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretScrubber(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_quart_app_handler", False):
            root.removeHandler(existing)
    handler._quart_app_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # hypercorn.toml gives hypercorn its own stdout handlers; don't print its lines twice through root.
    for name in ("hypercorn.error", "hypercorn.access"):
        logging.getLogger(name).propagate = False
    # Third-party chatter stays at WARNING unless we are debugging.
    for noisy in ("engineio.server", "socketio.server", "aiosqlite", "databases", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING)
