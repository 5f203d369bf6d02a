"""Long media as background jobs: POST /transcriptions/jobs answers 202, GET .../{id} reports progress."""

from __future__ import annotations

import asyncio
import re
import shutil
from typing import Any

from quart import Blueprint

from ..db import jobs as job_store
from ..errors import APIError
from ..media.probe import check_media, probe
from ..transcribe.jobs import JobRunner
from ..web.guards import current_principal, require_auth
from ..web.intake import receive_media
from ..web.state import feature, resources

blueprint = Blueprint("transcription_jobs", __name__)

PROVIDERS = ("deepgram", "openai")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


def _runner() -> JobRunner:
    runner = feature(JobRunner)
    if runner.closing:
        raise APIError(503, "shutting_down", "This server is not accepting jobs right now; retry shortly.")
    return runner


def _form_choice(fields: dict[str, str]) -> tuple[str, str | None]:
    provider = (fields.get("provider") or "").strip().lower()
    if provider not in PROVIDERS:
        raise APIError(
            400,
            "validation_error",
            f"provider must be one of: {', '.join(PROVIDERS)}.",
            extra={"fields": {"provider": "unknown or missing provider"}},
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
@require_auth()
async def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Accept an audio or video file (multipart `audio`, `provider`, optional `language`) as a job: 202."""
    rs = resources()
    runner = _runner()
    job_id = job_store.new_job_id()
    try:
        media, fields = await receive_media(runner.source_path(job_id), "audio", rs.settings.max_upload_bytes)
        provider, language = _form_choice(fields)
        rs.providers.transcriber(provider)  # 503 naming the missing variables
        check_media(await probe(media.path), rs.settings.max_media_minutes * 60.0)
        job = await job_store.create(
            rs.db(),
            job_id=job_id,
            user_id=current_principal().user.id,
            provider=provider,
            language=language,
            filename=media.filename,
            media_path=str(media.path),
            node=runner.node,
        )
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, runner.job_dir(job_id), True)
        raise
    runner.submit(job.id)
    return job.public(), 202, {"Location": f"/transcriptions/jobs/{job.id}"}


@blueprint.get("/transcriptions/jobs/<job_id>")
@require_auth()
async def get_job(job_id: str) -> dict[str, Any]:
    """The caller's job: status queued|running|done|failed, percent, error or transcription_id; 404 otherwise."""
    job = await job_store.get_owned(resources().db(), current_principal().user.id, job_id)
    if job is None:
        raise APIError(404, "not_found", "No such job.")
    return job.public()
