"""`POST /twilio/voice`: the router. Finds the tenant answering the called number and connects the call to
the Media Streams relay; anything else gets a polite `<Say>` and `<Hangup>` (never an HTTP error Twilio would
read to the caller as "an application error has occurred")."""

from __future__ import annotations

import logging

from quart import Blueprint, Response, request

from ..auth.twilio_signature import public_url, websocket_url
from ..calls.feature import RealtimeCalls
from ..db import calls, tenants
from ..errors import APIError
from ..web.state import feature, resources
from . import twiml
from .guards import twilio_webhook

log = logging.getLogger(__name__)

blueprint = Blueprint("twilio_voice", __name__)

STREAM_PATH = "/twilio/media-stream"


def _twiml(document: str) -> Response:
    return Response(document, status=200, content_type=twiml.CONTENT_TYPE)


def normalize_number(number: str) -> str:
    """E.164 as Twilio sends it (`+15550001111`); spaces, dashes and brackets are dropped."""
    kept = "".join(c for c in number.strip() if c.isdigit() or c == "+")
    return kept if kept.startswith("+") or not kept else "+" + kept


def stream_url() -> str:
    """TWILIO_STREAM_URL, else wss://{public host}{prefix}/twilio/media-stream (the prefix this webhook came
    in under, so the stream reaches this service the same way the webhook did)."""
    settings = resources().settings
    if settings.twilio_stream_url:
        return settings.twilio_stream_url
    prefix = settings.app_route_prefix
    path = prefix + STREAM_PATH if prefix and request.path.startswith(prefix + "/") else STREAM_PATH
    return websocket_url(public_url(settings, request.scheme, request.host, path, request.headers))


@blueprint.post("/twilio/voice")
@twilio_webhook
async def incoming_call() -> Response:
    """A call arrives: TwiML connecting it to the tenant's agent (or an apology)."""
    form = await request.form
    call_sid = form.get("CallSid", "")
    called = normalize_number(form.get("To", ""))
    caller = form.get("From") or None
    settings = resources().settings
    try:
        realtime = feature(RealtimeCalls)
        refusal = realtime.refusal()
        if refusal is not None:
            log.warning("call %s to %s refused: %s", call_sid, called, refusal)
            return _twiml(twiml.say_and_hang_up(twiml.BUSY if refusal == "at_capacity" else twiml.UNAVAILABLE))
        db = resources().db()
        tenant = await tenants.tenant_for_number(db, called) if called else None
        if tenant is None:
            log.info("call %s to %s: no tenant has this number", call_sid, called or "(no To)")
            return _twiml(twiml.say_and_hang_up(twiml.NOT_IN_SERVICE))
        if call_sid:
            await calls.open_call(
                db,
                call_sid=call_sid,
                tenant_id=tenant.id,
                from_number=caller,
                to_number=called,
                account_sid=form.get("AccountSid") or None,
                direction=form.get("Direction") or None,
                status=form.get("CallStatus") or "in-progress",
            )
        parameters = {"tenant": tenant.id, "caller": caller, "called": called, "call_sid": call_sid or None}
        log.info("call %s to %s: connecting to tenant %s", call_sid, called, tenant.id)
        # With Twilio REST, a stream lost with its instance is recovered during a pause before the apology (#22).
        hold_s = settings.calls_recovery_hold_s if settings.providers()["twilio"].configured else 0
        return _twiml(twiml.connect_stream(stream_url(), parameters, hold_s=hold_s))
    except APIError as exc:  # database or feature unavailable
        log.warning("call %s to %s: cannot connect (%s)", call_sid, called, exc.code)
    except Exception:  # noqa: BLE001 - the caller hears an apology, never an application error
        log.exception("call %s to %s: router failed", call_sid, called)
    return _twiml(twiml.say_and_hang_up(twiml.UNAVAILABLE))
