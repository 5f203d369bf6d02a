"""GET /api/calls: phone calls as Twilio and the relay last reported them, filtered (tenant, status incl. `live`,
since/until) and paged; GET /api/calls/{call_sid}: one call with its transcript (what the realtime agent and the
caller said). Admin only."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from ..db import call_segments, call_transcripts, calls
from ..errors import APIError
from ..web.guards import require_auth
from ..web.state import resources
from .schemas import CallDetailOut, CallOut, CallPage, CallSegmentOut, CallsQuery, TranscriptItemOut, epoch

blueprint = Blueprint("calls", __name__)


@blueprint.get("/api/calls")
@validate_querystring(CallsQuery)
@validate_response(CallPage)
@require_auth(admin=True)
async def recent_calls(query_args: CallsQuery) -> CallPage:
    """Calls matching the filters, most recently updated first, one page at a time (`next_offset` null at the end)."""
    q = query_args
    items, total = await calls.list_calls(
        resources().db(),
        tenant_id=q.tenant_id,
        status=q.status,
        since=epoch(q.since) if q.since is not None else None,
        until=epoch(q.until) if q.until is not None else None,
        limit=q.limit,
        offset=q.offset,
    )
    following = q.offset + len(items)
    return CallPage(
        items=[CallOut(**c.__dict__) for c in items],
        total=total,
        limit=q.limit,
        offset=q.offset,
        next_offset=following if items and following < total else None,
    )


@blueprint.get("/api/calls/<call_sid>")
@validate_response(CallDetailOut)
@require_auth(admin=True)
async def get_call(call_sid: str) -> CallDetailOut:
    """One call: its record (tenant, numbers, start and end, end reason, token usage), its transcript and its
    segments (one per media stream: a call moved or recovered across instances has several)."""
    db = resources().db()
    call = await calls.get_call(db, call_sid)
    if call is None:
        raise APIError(404, "not_found", "No such call.")
    items = await call_transcripts.items_of(db, call_sid)
    segments = await call_segments.segments_of(db, call_sid)
    return CallDetailOut(
        transcript=[TranscriptItemOut(**i.public()) for i in items],
        segments=[CallSegmentOut(**s.public()) for s in segments],
        **call.__dict__,
    )
