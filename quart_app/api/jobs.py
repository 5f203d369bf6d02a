"""Long media as background jobs: POST /transcriptions/jobs answers 202, GET .../{id} reports progress."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from databases import Database
from pydantic import BaseModel, Field
from quart import Blueprint, request
from quart_schema import document_headers, document_querystring

from ..db import jobs as job_store
from ..errors import APIError
from ..media.tools import MEDIA_TOOLS
from ..transcribe import idempotency
from ..transcribe.jobs import ENDPOINT, JobRunner
from ..web.guards import current_principal, require_auth
from ..web.intake import receive_pending, store
from ..web.state import feature, resources
from ..web.uploads import idempotency_key
from .transcriptions import IdempotencyHeaders, replay_response

blueprint = Blueprint("transcription_jobs", __name__)

PROVIDERS = ("deepgram", "openai")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


class JobQuery(BaseModel):
    provider: Literal["deepgram", "openai"] | None = Field(
        default=None,
        description="The provider, as in the form field; given here, an unconfigured provider or a full quota "
        "is refused before the upload is read.",
    )


def _runner() -> JobRunner:
    runner = feature(JobRunner)
    if runner.closing:
        raise APIError(503, "shutting_down", "This server is not accepting jobs right now; retry shortly.")
    return runner


def _provider(value: str | None) -> str:
    provider = (value or "").strip().lower()
    if provider not in PROVIDERS:
        raise APIError(
            400,
            "validation_error",
            f"provider must be one of: {', '.join(PROVIDERS)}.",
            extra={"fields": {"provider": "unknown or missing provider"}},
        )
    return provider


def _form_choice(fields: dict[str, str], from_query: str | None) -> tuple[str, str | None]:
    provider = _provider(fields.get("provider") or from_query)
    if from_query is not None and fields.get("provider") and provider != from_query:
        raise APIError(
            400,
            "validation_error",
            "provider differs between the query string and the form.",
            extra={"fields": {"provider": "query and form disagree"}},
        )
    language = (fields.get("language") or "").strip() or None
    if language is not None and not _LANGUAGE.match(language):
        raise APIError(
            400,
            "validation_error",
            "language must be an ISO-639-1 code such as en or pt-BR.",
            extra={"fields": {"language": "invalid language code"}},
        )
    return provider, language


@blueprint.post("/transcriptions/jobs")
@document_querystring(JobQuery)
@document_headers(IdempotencyHeaders)
@require_auth()
async def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Accept an audio or video file (multipart `audio`, `provider`, optional `language`) as a job: 202.

    `?provider=` may carry the provider instead of the form field: the provider's configuration and the
    caller's job quota are then checked before the upload is read. An `Idempotency-Key` header makes a
    retry return the first answer (header `Idempotent-Replay: true`) instead of a second job.
    """
    rs = resources()
    runner = _runner()
    await MEDIA_TOOLS.require()  # 503 media_tools_unavailable without ffmpeg/ffprobe, before the body
    user_id = current_principal().user.id
    key = idempotency_key()
    from_query = _provider(request.args["provider"]) if "provider" in request.args else None
    if from_query is not None:
        rs.providers.transcriber(from_query)  # 503 naming the missing variables, before the body
    db = rs.db()
    if key is None or not await idempotency.known(db, user_id, key):
        await runner.check_quota(db, user_id)  # 429 before the body when the user is already at the limit

    pending = await receive_pending("audio", rs.settings.max_upload_bytes)
    job_id = job_store.new_job_id()
    claim: idempotency.Claim | None = None
    try:
        async with runner.intake(job_id):  # the upload's scratch directory, removed before we answer
            provider, language = _form_choice(pending.fields, from_query)
            rs.providers.transcriber(provider)  # 503, still before anything is stored
            if key is not None:
                fingerprint = await asyncio.to_thread(
                    idempotency.fingerprint, (ENDPOINT, provider, language or ""), pending.stream
                )
                outcome = await idempotency.begin(db, user_id, key, fingerprint)
                if isinstance(outcome, idempotency.Replay):
                    return replay_response(outcome)
                claim = outcome
            await runner.check_quota(db, user_id)  # the job count, before the upload is processed
            media = await store(pending, runner.source_path(job_id))
            # Probe, extract the audio and cut it into the chunks the database keeps (APIError for bad media).
            audio = await runner.prepare(media.path, provider)
            location = f"/transcriptions/jobs/{job_id}"

            async def remember(db: Database, job: job_store.Job) -> None:
                if claim is not None:
                    await claim.complete(db, 202, job.public(), {"Location": location})

            job = await runner.admit(
                job_id=job_id,
                user_id=user_id,
                provider=provider,
                language=language,
                filename=media.filename,
                audio=audio,
                then=remember,
            )
    except BaseException:
        if claim is not None:
            await claim.release(db)
        raise
    finally:
        pending.close()  # the request's spool (a replay never stored it)
    runner.submit(job.id)
    return job.public(), 202, {"Location": location}


@blueprint.get("/transcriptions/jobs/<job_id>")
@require_auth()
async def get_job(job_id: str) -> dict[str, Any]:
    """The caller's job: status queued|running|done|failed, percent, error or transcription_id; 404 otherwise."""
    job = await job_store.get_owned(resources().db(), current_principal().user.id, job_id)
    if job is None:
        raise APIError(404, "not_found", "No such job.")
    return job.public()
