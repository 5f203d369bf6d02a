"""Audio in, text out: POST /transcriptions/deepgram and /transcriptions/whisper, and the caller's history.

Each provider route is its own operation (its own summary and request schema in /openapi.json); both run
`_transcribe`. An `Idempotency-Key` header makes a client's retry get the first answer, billed once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from typing import Any

from databases import Database
from pydantic import BaseModel, Field
from quart import Blueprint, Response, g, request
from quart_schema import (
    DataSource,
    document_headers,
    document_request,
    document_response,
    validate_querystring,
    validate_response,
)

from ..db import transcriptions
from ..errors import APIError
from ..media.tools import MEDIA_TOOLS
from ..settings import Settings
from ..transcribe import idempotency, subtitles
from ..transcribe.long_media import measure_upload, media_deadlines, transcribe_upload_chunked
from ..web.guards import current_principal, require_auth
from ..web.state import resources
from ..web.uploads import idempotency_key, receive_audio
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


class IdempotencyHeaders(BaseModel):
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=idempotency.MAX_KEY_CHARS,
        pattern=r"^[\x20-\x7e]+$",
        description="1-255 printable ASCII characters, unique per request. The same key from the same user "
        "within 24 h answers the first request's result again (header `Idempotent-Replay: true`) without "
        "redoing or rebilling it; with a different request 422 `idempotency_key_reused`; while the first "
        "is still running 409 `idempotency_key_in_progress`.",
    )


class DeepgramUpload(TranscriptionUpload):
    """multipart/form-data for Deepgram: the audio file in `audio` (up to MAX_UPLOAD_MB), optional `language`."""


class WhisperUpload(TranscriptionUpload):
    """multipart/form-data for OpenAI: the audio file in `audio` (over OPENAI_TRANSCRIBE_MAX_MB it is split
    at pauses and sent in parts), optional `language`."""


def replay_response(replay: idempotency.Replay) -> tuple[Any, int, dict[str, str]]:
    """The stored answer of the key's first request, marked as a replay."""
    return replay.body, replay.status, {**replay.headers, idempotency.REPLAY_HEADER: "true"}


@blueprint.post("/transcriptions/deepgram")
@document_request(DeepgramUpload, source=DataSource.FORM_MULTIPART)
@document_headers(IdempotencyHeaders)
@validate_response(TranscriptionOut)
@require_auth()
async def transcribe_deepgram() -> tuple[Any, int, dict[str, str]]:
    """Transcribe one uploaded audio file with Deepgram; stored and metered.

    503 `provider_unconfigured` without DEEPGRAM_API_KEY, before the upload is read.
    """
    return await _transcribe("deepgram")


@blueprint.post("/transcriptions/whisper")
@document_request(WhisperUpload, source=DataSource.FORM_MULTIPART)
@document_headers(IdempotencyHeaders)
@validate_response(TranscriptionOut)
@require_auth()
async def transcribe_whisper() -> tuple[Any, int, dict[str, str]]:
    """Transcribe one uploaded audio file with OpenAI (OPENAI_TRANSCRIBE_MODEL); stored and metered.

    A file over OpenAI's upload limit is split at pauses and transcribed in parts, in this request.
    503 `provider_unconfigured` without OPENAI_API_KEY, before the upload is read.
    """
    return await _transcribe("whisper")


async def _transcribe(route: str) -> tuple[Any, int, dict[str, str]]:
    rs = resources()
    provider_name = ROUTE_PROVIDERS[route]
    endpoint = f"/transcriptions/{route}"
    transcriber = rs.providers.transcriber(provider_name)  # 503 before reading a byte of upload
    key = idempotency_key()  # 400 before reading the body
    user_id = current_principal().user.id
    deadlines = media_deadlines(rs.settings)
    if _may_need_media_tools(provider_name, rs.settings.openai_transcribe_model, rs.settings):
        await MEDIA_TOOLS.require()  # 503 media_tools_unavailable, before reading the upload
    upload, fields = await receive_audio("audio", rs.settings.max_upload_bytes)
    claim: idempotency.Claim | None = None
    try:
        language = (fields.get("language") or "").strip() or None
        if language is not None and not _LANGUAGE.match(language):
            raise APIError(
                400,
                "validation_error",
                "language must be an ISO-639-1 code such as en or pt-BR.",
                extra={"fields": {"language": "invalid language code"}},
            )
        if key is not None:
            fingerprint = await asyncio.to_thread(idempotency.fingerprint, (endpoint, language or ""), upload.stream)
            outcome = await idempotency.begin(rs.db(), user_id, key, fingerprint)
            if isinstance(outcome, idempotency.Replay):
                return replay_response(outcome)
            claim = outcome
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
                    deadlines=deadlines,
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
        if result.duration_s is None:
            # The provider did not say (e.g. gpt-4o-transcribe): meter what ffprobe finds in the upload.
            result = dataclasses.replace(result, duration_s=await measure_upload(upload, deadlines))

        charge = rs.billing.transcription_charge(
            provider_name,
            endpoint=endpoint,
            request_id=getattr(g, "request_id", None),
            duration_ms=latency_ms,
            audio_seconds=result.duration_s,
        )

        def answer(record: transcriptions.Transcription) -> dict[str, Any]:
            return TranscriptionOut(
                id=record.id,
                transcript=record.transcript,
                language=record.language,
                duration_s=record.duration_s,
                provider=provider_name,
                processing_info=ProcessingInfo(model=result.model, latency_ms=latency_ms),
            ).model_dump(mode="json")

        async def remember(db: Database, record: transcriptions.Transcription) -> None:
            if claim is not None:  # stored with the transcript and its bill, in one transaction
                await claim.complete(db, 200, answer(record))

        record = await rs.billing.save_transcription(
            user_id, provider_name, result, charge, source="upload", filename=upload.filename, then=remember
        )
    except BaseException:
        if claim is not None:
            await claim.release(rs.db())
        raise
    finally:
        upload.close()
    return answer(record), 200, {}


def _may_need_media_tools(provider_name: str, model: str, settings: Settings) -> bool:
    """Whether this upload may need ffmpeg/ffprobe, told before reading it: an OpenAI upload that may be over
    the provider's limit (split at pauses) or whose model reports no duration (metered by probing the file).
    Deepgram measures its audio itself and takes any size: no tools."""
    if provider_name != "openai":
        return False
    length = request.content_length
    return model != "whisper-1" or length is None or length > settings.openai_transcribe_max_bytes


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
