"""Audio in, text out: POST /transcriptions/{deepgram,whisper}, and the caller's transcription history."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from quart import Blueprint, Response, g, request
from quart_schema import DataSource, document_request, document_response, validate_querystring, validate_response

from ..db import transcriptions
from ..errors import APIError
from ..transcribe import subtitles
from ..transcribe.long_media import transcribe_upload_chunked
from ..web.guards import current_principal, require_auth
from ..web.state import resources
from ..web.uploads import receive_audio
from .schemas import (
    PageQuery,
    ProcessingInfo,
    StoredTranscriptionOut,
    TranscriptionOut,
    TranscriptionPage,
    TranscriptionUpload,
)

log = logging.getLogger(__name__)

blueprint = Blueprint("transcriptions", __name__)

ROUTE_PROVIDERS = {"deepgram": "deepgram", "whisper": "openai"}
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


@blueprint.post("/transcriptions/<any(deepgram, whisper):route>")
@document_request(TranscriptionUpload, source=DataSource.FORM_MULTIPART)
@validate_response(TranscriptionOut)
@require_auth()
async def transcribe(route: str) -> TranscriptionOut:
    """Transcribe one uploaded audio file with Deepgram or OpenAI (whisper); stored and metered."""
    rs = resources()
    provider_name = ROUTE_PROVIDERS[route]
    transcriber = rs.providers.transcriber(provider_name)  # 503 before reading a byte of upload
    upload, fields = await receive_audio("audio", rs.settings.max_upload_bytes)
    try:
        language = (fields.get("language") or "").strip() or None
        if language is not None and not _LANGUAGE.match(language):
            raise APIError(
                400,
                "validation_error",
                "language must be an ISO-639-1 code such as en or pt-BR.",
                extra={"fields": {"language": "invalid language code"}},
            )
        started = time.perf_counter()
        try:
            if provider_name == "openai" and upload.size > rs.settings.openai_transcribe_max_bytes:
                # Over OpenAI's upload limit: split at pauses and transcribe the pieces, in this request.
                result = await transcribe_upload_chunked(
                    transcriber,
                    upload,
                    language,
                    max_seconds=rs.settings.max_media_minutes * 60.0,
                    max_bytes=rs.settings.openai_transcribe_max_bytes,
                    concurrency=rs.settings.transcribe_concurrency,
                )
            else:
                result = await transcriber.transcribe(upload, language)
        except APIError as exc:
            log.warning(
                "transcription via %s failed (request_id=%s): %s %s",
                provider_name,
                getattr(g, "request_id", None),
                exc.status,
                exc.message,
            )
            raise
        latency_ms = int((time.perf_counter() - started) * 1000)
    finally:
        upload.close()

    charge = rs.billing.transcription_charge(
        provider_name,
        endpoint=f"/transcriptions/{route}",
        request_id=getattr(g, "request_id", None),
        duration_ms=latency_ms,
        audio_seconds=result.duration_s,
    )
    record = await rs.billing.save_transcription(
        current_principal().user.id, provider_name, result, charge, source="upload", filename=upload.filename
    )
    return TranscriptionOut(
        id=record.id,
        transcript=record.transcript,
        language=record.language,
        duration_s=record.duration_s,
        provider=provider_name,
        processing_info=ProcessingInfo(model=result.model, latency_ms=latency_ms),
    )


@blueprint.get("/api/transcriptions")
@validate_querystring(PageQuery)
@validate_response(TranscriptionPage)
@require_auth()
async def list_transcriptions(query_args: PageQuery) -> TranscriptionPage:
    """The caller's transcriptions, newest first; `q` filters by full-text search."""
    items, total = await transcriptions.list_owned(
        resources().db(),
        current_principal().user.id,
        limit=query_args.limit,
        offset=query_args.offset,
        search=query_args.q,
    )
    following = query_args.offset + len(items)
    return TranscriptionPage(
        items=[StoredTranscriptionOut(**i.public(with_segments=False)) for i in items],
        total=total,
        limit=query_args.limit,
        offset=query_args.offset,
        next_offset=following if following < total else None,
    )


@blueprint.get("/api/transcriptions/<transcription_id>")
@document_response(StoredTranscriptionOut)
@require_auth()
async def get_transcription(transcription_id: str) -> Response | dict[str, Any]:
    """One of the caller's transcriptions with its segments; 404 for anyone else's.

    `?format=srt` or `?format=vtt` answers subtitles made from the segments instead of JSON.
    """
    fmt = request.args.get("format")
    if fmt not in (None, "json", "srt", "vtt"):
        raise APIError(
            400,
            "validation_error",
            "format must be json, srt or vtt.",
            extra={"fields": {"format": "unsupported format"}},
        )
    record = await transcriptions.get_owned(resources().db(), current_principal().user.id, transcription_id)
    if record is None:
        raise APIError(404, "not_found", "No such transcription.")
    if fmt in ("srt", "vtt"):
        segments = record.segments or [
            transcriptions.Segment(start=0.0, end=record.duration_s or 0.0, text=record.transcript)
        ]
        return Response(subtitles.render(segments, fmt), content_type=subtitles.CONTENT_TYPES[fmt])
    # Validated by building the model; returned as a dict because a subtitle Response can't pass validate_response.
    return StoredTranscriptionOut(**record.public()).model_dump(mode="json")


@blueprint.delete("/api/transcriptions/<transcription_id>")
@require_auth()
async def delete_transcription(transcription_id: str) -> tuple[str, int]:
    """Delete one of the caller's transcriptions (usage records stay for billing)."""
    if not await transcriptions.delete_owned(resources().db(), current_principal().user.id, transcription_id):
        raise APIError(404, "not_found", "No such transcription.")
    return "", 204
