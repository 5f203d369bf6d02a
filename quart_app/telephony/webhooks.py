"""Twilio webhooks. Every route here is signature-checked."""

from __future__ import annotations

import logging

from quart import Blueprint, request

from ..calls.feature import RealtimeCalls
from ..db import calls
from ..errors import APIError
from ..web.state import feature, resources
from .guards import twilio_webhook

log = logging.getLogger(__name__)

blueprint = Blueprint("twilio", __name__)

CALL_STATUSES = {
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
}


@blueprint.post("/twilio/status")
@twilio_webhook
async def call_status() -> tuple[str, int]:
    """Call status callback: records the call's latest state. Answers 204 (Twilio ignores the body)."""
    form = await request.form
    call_sid = form.get("CallSid", "")
    status = form.get("CallStatus", "")
    if not call_sid.startswith("CA") or len(call_sid) != 34 or status not in CALL_STATUSES:
        raise APIError(400, "invalid_callback", "CallSid and a known CallStatus are required.")
    try:
        sequence = int(form.get("SequenceNumber", "0"))
        duration = int(form["CallDuration"]) if form.get("CallDuration") else None
    except ValueError:
        raise APIError(400, "invalid_callback", "SequenceNumber and CallDuration must be integers.") from None
    await calls.record_status(
        resources().db(),
        call_sid=call_sid,
        status=status,
        sequence=sequence,
        account_sid=form.get("AccountSid"),
        from_number=form.get("From"),
        to_number=form.get("To"),
        direction=form.get("Direction"),
        duration_s=duration,
    )
    log.info("call %s is %s", call_sid, status)
    try:  # a call whose relaying instance died is recovered (or its lost stream closed) here too (#22)
        await feature(RealtimeCalls).cluster.on_status(call_sid, status)
    except Exception as exc:  # noqa: BLE001 - the callback is recorded; the sweeper retries the recovery
        log.warning("call %s: recovery check on the status callback failed: %s", call_sid, exc)
    return "", 204
