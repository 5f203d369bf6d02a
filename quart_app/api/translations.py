"""Text in, text out: POST /translations/{openai,deepseek}, and the caller's translation history."""

from __future__ import annotations

import logging
import time

from quart import Blueprint, g
from quart_schema import validate_querystring, validate_request, validate_response

from ..auth.guards import current_principal, require_auth
from ..db import translations, usage
from ..db.database import write_transaction
from ..errors import APIError
from ..metering import translation_cost
from ..runtime import runtime
from .schemas import PageQuery, StoredTranslationOut, TranslationIn, TranslationOut, TranslationPage

log = logging.getLogger(__name__)

blueprint = Blueprint("translations", __name__)


@blueprint.post("/translations/<any(openai, deepseek):provider>")
@validate_request(TranslationIn)
@validate_response(TranslationOut)
@require_auth()
async def translate(provider: str, data: TranslationIn):  # type: ignore[no-untyped-def]
    """Translate text with OpenAI or DeepSeek; stored and metered per character."""
    rt = runtime()
    translator = rt.providers.translator(provider)
    text = data.text.strip()
    if not text:
        raise APIError(400, "validation_error", "text must not be blank.", extra={"fields": {"text": "blank"}})
    started = time.perf_counter()
    try:
        result = await translator.translate(text, data.target_language, data.source_language)
    except APIError as exc:
        log.warning("translation via %s failed (request_id=%s): %s %s", provider, getattr(g, "request_id", None),
                    exc.status, exc.message)
        raise
    latency_ms = int((time.perf_counter() - started) * 1000)
    principal = current_principal()
    db = rt.database()
    async with write_transaction(db):
        record = await translations.create(
            db, user_id=principal.user.id, provider=provider, model=result.model,
            source_language=data.source_language, target_language=data.target_language, text=text,
            translation=result.translation,
        )
        await usage.record(
            db, user_id=principal.user.id, service=f"translation.{provider}", endpoint=f"/translations/{provider}",
            request_id=getattr(g, "request_id", None), duration_ms=latency_ms, characters=len(text),
            cost_usd=translation_cost(rt.settings, provider, len(text)),
        )
    return TranslationOut(id=record.id, translation=record.translation, provider=provider, model=result.model)


@blueprint.get("/api/translations")
@validate_querystring(PageQuery)
@validate_response(TranslationPage)
@require_auth()
async def list_translations(query_args: PageQuery):  # type: ignore[no-untyped-def]
    """The caller's translations, newest first."""
    items, total = await translations.list_owned(
        runtime().database(), current_principal().user.id, limit=query_args.limit, offset=query_args.offset
    )
    following = query_args.offset + len(items)
    return TranslationPage(items=[i.public() for i in items], total=total, limit=query_args.limit,
                           offset=query_args.offset, next_offset=following if following < total else None)


@blueprint.get("/api/translations/<translation_id>")
@validate_response(StoredTranslationOut)
@require_auth()
async def get_translation(translation_id: str):  # type: ignore[no-untyped-def]
    """One of the caller's translations; 404 for anyone else's."""
    record = await translations.get_owned(runtime().database(), current_principal().user.id, translation_id)
    if record is None:
        raise APIError(404, "not_found", "No such translation.")
    return StoredTranslationOut(**record.public())


@blueprint.delete("/api/translations/<translation_id>")
@require_auth()
async def delete_translation(translation_id: str):  # type: ignore[no-untyped-def]
    """Delete one of the caller's translations."""
    if not await translations.delete_owned(runtime().database(), current_principal().user.id, translation_id):
        raise APIError(404, "not_found", "No such translation.")
    return "", 204
