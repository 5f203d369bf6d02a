"""Secrets never reach a log line: not in messages, exception text, tracebacks or URLs (issue 15, finding 14)."""

from __future__ import annotations

import io
import logging

from quart_app.logging_setup import configure_logging
from quart_app.settings import Settings

SECRETS = {
    "OPENAI_API_KEY": "sk-live-0123456789abcdef",
    "TWILIO_AUTH_TOKEN": "twilio-secret-token-42",
    "DATABASE_URL": "postgresql://svc:db-password-99@db.internal:5432/app",
}


def _logged(fmt: str) -> str:
    settings = Settings.from_env({**SECRETS, "LOG_FORMAT": fmt})
    configure_logging(settings)
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_quart_app_handler", False))
    stream = io.StringIO()
    handler.setStream(stream)  # type: ignore[attr-defined]
    log = logging.getLogger("tests.logging")
    log.warning("calling with key %s", SECRETS["OPENAI_API_KEY"])
    try:
        raise RuntimeError(f"upstream said: bad token {SECRETS['TWILIO_AUTH_TOKEN']} for {SECRETS['DATABASE_URL']}")
    except RuntimeError:
        log.exception("provider failed")
    return stream.getvalue()


def test_secrets_are_scrubbed_from_messages_and_tracebacks() -> None:
    for fmt in ("text", "json"):
        output = _logged(fmt)
        assert "provider failed" in output and "Traceback" in output
        for leaked in ("sk-live-0123456789abcdef", "twilio-secret-token-42", "db-password-99"):
            assert leaked not in output, (fmt, leaked)
        assert "***" in output
