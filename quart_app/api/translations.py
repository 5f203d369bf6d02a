"""Text in, text out: POST /translations/openai and /translations/deepseek, and the caller's history.

Each provider route is its own operation (its own summary in /openapi.json); both run `_translate`.
"""

from __future__ import annotations

import logging
import time

from quart import Blueprint, g
from quart_schema import validate_querystring, validate_request, validate_response

from ..db import translations
from ..errors import APIError
from ..web.guards import current_principal, require_auth
from ..web.state import resources
from .schemas import PageQuery, StoredTranslationOut, TranslationIn, TranslationOut, TranslationPage

log = logging.getLogger(__name__)

blueprint = Blueprint("translations", __name__)


@blueprint.post("/translations/openai")
@validate_request(TranslationIn)
@validate_response(TranslationOut)
@require_auth()
async def translate_openai(data: TranslationIn) -> TranslationOut:
    """Translate text with OpenAI (OPENAI_TRANSLATE_MODEL); stored and metered per character.

    503 `provider_unconfigured` without OPENAI_API_KEY.
    """
    return await _translate("openai", data)


@blueprint.post("/translations/deepseek")
@validate_request(TranslationIn)
@validate_response(TranslationOut)
@require_auth()
async def translate_deepseek(data: TranslationIn) -> TranslationOut:
    """Translate text with DeepSeek (DEEPSEEK_MODEL); stored and metered per character.

    503 `provider_unconfigured` without DEEPSEEK_API_KEY.
    """
    return await _translate("deepseek", data)


async def _translate(provider: str, data: TranslationIn) -> TranslationOut:
    rs = resources()
    translator = rs.providers.translator(provider)
    text = data.text.strip()
    if not text:
        raise APIError(400, "validation_error", "text must not be blank.", extra={"fields": {"text": "blank"}})
    started = time.perf_counter()
    try:
        result = await translator.translate(text, data.target_language, data.source_language)
    except APIError as exc:
        log.warning(
            "translation via %s failed (request_id=%s): %s %s",
            provider,
            getattr(g, "request_id", None),
            exc.status,
            exc.message,
        )
        raise
    latency_ms = int((time.perf_counter() - started) * 1000)
    charge = rs.billing.translation_charge(
        provider,
        endpoint=f"/translations/{provider}",
        request_id=getattr(g, "request_id", None),
        duration_ms=latency_ms,
        characters=len(text),
    )
    record = await rs.billing.save_translation(
        current_principal().user.id,
        provider,
        result,
        charge,
        text=text,
        source_language=data.source_language,
        target_language=data.target_language,
    )
    return TranslationOut(id=record.id, translation=record.translation, provider=provider, model=result.model)


@blueprint.get("/api/translations")
@validate_querystring(PageQuery)
@validate_response(TranslationPage)
@require_auth()
async def list_translations(query_args: PageQuery) -> TranslationPage:
    """The caller's translations, newest first."""
    items, total = await translations.list_owned(
        resources().db(), current_principal().user.id, limit=query_args.limit, offset=query_args.offset
    )
    following = query_args.offset + len(items)
    return TranslationPage(
        items=[StoredTranslationOut(**i.public()) for i in items],
        total=total,
        limit=query_args.limit,
        offset=query_args.offset,
        next_offset=following if following < total else None,
    )


@blueprint.get("/api/translations/<translation_id>")
@validate_response(StoredTranslationOut)
@require_auth()
async def get_translation(translation_id: str) -> StoredTranslationOut:
    """One of the caller's translations; 404 for anyone else's."""
    record = await translations.get_owned(resources().db(), current_principal().user.id, translation_id)
    if record is None:
        raise APIError(404, "not_found", "No such translation.")
    return StoredTranslationOut(**record.public())


@blueprint.delete("/api/translations/<translation_id>")
@require_auth()
async def delete_translation(translation_id: str) -> tuple[str, int]:
    """Delete one of the caller's translations."""
    if not await translations.delete_owned(resources().db(), current_principal().user.id, translation_id):
        raise APIError(404, "not_found", "No such translation.")
    return "", 204
