"""Tenants of the phone agent and their knowledge base. Admin only.

/api/tenants                                  POST, GET
/api/tenants/{tenant_id}                      GET, PATCH, DELETE
/api/tenants/{tenant_id}/documents            POST (JSON {title, text} or multipart `file`), GET
/api/tenants/{tenant_id}/documents/{doc_id}   GET, DELETE
/api/tenants/{tenant_id}/search?q=            what `search_knowledge` would find (a preview)
"""

from __future__ import annotations

import html
import os
import re
from typing import Any

from pydantic import ValidationError
from quart import Blueprint, request
from quart_schema import document_request, validate_querystring, validate_request, validate_response

from ..calls.tools import search_result
from ..db import knowledge, tenants
from ..db.tenants import NumberTaken, Tenant
from ..errors import APIError
from ..web.guards import require_auth
from ..web.state import resources
from .schemas import (
    DocumentDetailOut,
    DocumentIn,
    DocumentOut,
    DocumentPage,
    ListQuery,
    PassageOut,
    SearchOut,
    SearchQuery,
    TenantIn,
    TenantOut,
    TenantPage,
    TenantPatch,
)

blueprint = Blueprint("tenants", __name__)

TEXT_TYPES = ("text/plain", "text/markdown", "text/csv", "text/html", "application/json", "text/x-markdown")
_TAG = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def _out(tenant: Tenant) -> TenantOut:
    return TenantOut(**tenant.public())


def _values(data: TenantIn | TenantPatch, *, only_set: bool) -> dict[str, Any]:
    fields = data.model_fields_set if only_set else set(type(data).model_fields)
    values = {name: getattr(data, name) for name in fields if name != "phone_numbers"}
    if "turn_detection" in values:
        detection = values["turn_detection"]
        values["turn_detection"] = detection.model_dump(exclude_none=True) if detection is not None else None
    for required in ("name", "instructions", "knowledge_enabled"):
        if only_set and required in values and values[required] is None:
            raise APIError(400, "invalid_request", f"{required} cannot be null.")
    return values


def _numbers(numbers: list[str] | None) -> list[str] | None:
    if numbers is None:
        return None
    if len(set(numbers)) != len(numbers):
        raise APIError(400, "invalid_request", "phone_numbers contains the same number twice.")
    return numbers


def _taken(exc: NumberTaken) -> APIError:
    return APIError(409, "number_taken", "A phone number belongs to another tenant.", extra={"numbers": exc.numbers})


async def _tenant_or_404(tenant_id: str) -> Tenant:
    tenant = await tenants.get_tenant(resources().db(), tenant_id)
    if tenant is None:
        raise APIError(404, "not_found", "No such tenant.")
    return tenant


@blueprint.post("/api/tenants")
@validate_request(TenantIn)
@validate_response(TenantOut, 201)
@require_auth(admin=True)
async def create_tenant(data: TenantIn) -> tuple[TenantOut, int]:
    """Create a tenant: who answers its numbers, and how."""
    try:
        tenant = await tenants.create_tenant(
            resources().db(), phone_numbers=_numbers(data.phone_numbers) or [], **_values(data, only_set=False)
        )
    except NumberTaken as exc:
        raise _taken(exc) from None
    return _out(tenant), 201


@blueprint.get("/api/tenants")
@validate_querystring(ListQuery)
@validate_response(TenantPage)
@require_auth(admin=True)
async def list_tenants(query_args: ListQuery) -> TenantPage:
    """Tenants, newest first."""
    items, total = await tenants.list_tenants(resources().db(), limit=query_args.limit, offset=query_args.offset)
    return TenantPage(items=[_out(t) for t in items], total=total, limit=query_args.limit, offset=query_args.offset)


@blueprint.get("/api/tenants/<tenant_id>")
@validate_response(TenantOut)
@require_auth(admin=True)
async def get_tenant(tenant_id: str) -> TenantOut:
    """One tenant."""
    return _out(await _tenant_or_404(tenant_id))


@blueprint.patch("/api/tenants/<tenant_id>")
@validate_request(TenantPatch)
@validate_response(TenantOut)
@require_auth(admin=True)
async def update_tenant(tenant_id: str, data: TenantPatch) -> TenantOut:
    """Change some of a tenant's fields (calls already in progress keep their configuration)."""
    try:
        tenant = await tenants.update_tenant(
            resources().db(),
            tenant_id,
            phone_numbers=_numbers(data.phone_numbers) if "phone_numbers" in data.model_fields_set else None,
            **_values(data, only_set=True),
        )
    except NumberTaken as exc:
        raise _taken(exc) from None
    if tenant is None:
        raise APIError(404, "not_found", "No such tenant.")
    return _out(tenant)


@blueprint.delete("/api/tenants/<tenant_id>")
@require_auth(admin=True)
async def delete_tenant(tenant_id: str) -> tuple[str, int]:
    """Delete a tenant with its numbers and documents (its calls and transcripts are kept)."""
    if not await tenants.delete_tenant(resources().db(), tenant_id):
        raise APIError(404, "not_found", "No such tenant.")
    return "", 204


# ----- knowledge --------------------------------------------------------------------------------------------


def _plain_text(raw: bytes, content_type: str) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise APIError(400, "invalid_document", "Documents must be UTF-8 text.") from None
    if content_type == "text/html":
        text = html.unescape(_TAG.sub(" ", text))
    return text


async def _document_from_request() -> tuple[str, str, str, str | None]:
    """(title, text, content type, filename) from a JSON body or a multipart upload."""
    if request.mimetype == "multipart/form-data":
        files = await request.files
        form = await request.form
        upload = files.get("file")
        if upload is None:
            raise APIError(400, "missing_file", "Send the document in the multipart field 'file'.")
        filename = os.path.basename(upload.filename or "") or None
        content_type = upload.mimetype or "text/plain"
        if filename and content_type in ("application/octet-stream", ""):
            content_type = "text/markdown" if filename.endswith((".md", ".markdown")) else "text/plain"
        if content_type not in TEXT_TYPES:
            raise APIError(
                415,
                "unsupported_media_type",
                f"Documents are text: one of {', '.join(TEXT_TYPES)}.",
                extra={"supported": list(TEXT_TYPES)},
            )
        text = _plain_text(upload.read(), content_type)
        title = (form.get("title") or filename or "document").strip()[:300]
        return title, text, content_type, filename
    body = await request.get_json(silent=True)
    try:
        data = DocumentIn.model_validate(body)
    except ValidationError as exc:
        raise APIError(
            400,
            "invalid_request",
            "Send JSON {title, text} or a multipart 'file'.",
            extra={"errors": exc.errors(include_url=False, include_input=False)},
        ) from None
    return data.title, data.text, "text/plain", None


@blueprint.post("/api/tenants/<tenant_id>/documents")
@document_request(DocumentIn)
@validate_response(DocumentOut, 201)
@require_auth(admin=True)
async def add_document(tenant_id: str) -> tuple[DocumentOut, int]:
    """Add a document to the tenant's knowledge base: JSON `{title, text}`, or multipart/form-data with the file
    in `file` (UTF-8 text, Markdown, CSV, HTML or JSON; at most MAX_JSON_KB) and an optional `title`."""
    await _tenant_or_404(tenant_id)
    title, text, content_type, filename = await _document_from_request()
    if not text.strip():
        raise APIError(400, "empty_document", "The document holds no text.")
    document = await knowledge.add_document(
        resources().db(), tenant_id=tenant_id, title=title, content=text, content_type=content_type, filename=filename
    )
    return DocumentOut(**document.public()), 201


@blueprint.get("/api/tenants/<tenant_id>/documents")
@validate_querystring(ListQuery)
@validate_response(DocumentPage)
@require_auth(admin=True)
async def list_documents(tenant_id: str, query_args: ListQuery) -> DocumentPage:
    """The tenant's documents, newest first (without their text)."""
    await _tenant_or_404(tenant_id)
    items, total = await knowledge.list_documents(
        resources().db(), tenant_id, limit=query_args.limit, offset=query_args.offset
    )
    return DocumentPage(
        items=[DocumentOut(**d.public()) for d in items], total=total, limit=query_args.limit, offset=query_args.offset
    )


@blueprint.get("/api/tenants/<tenant_id>/documents/<document_id>")
@validate_response(DocumentDetailOut)
@require_auth(admin=True)
async def get_document(tenant_id: str, document_id: str) -> DocumentDetailOut:
    """One document with its text."""
    found = await knowledge.get_document(resources().db(), tenant_id, document_id)
    if found is None:
        raise APIError(404, "not_found", "No such document.")
    document, text = found
    return DocumentDetailOut(text=text, **document.public())


@blueprint.delete("/api/tenants/<tenant_id>/documents/<document_id>")
@require_auth(admin=True)
async def delete_document(tenant_id: str, document_id: str) -> tuple[str, int]:
    """Remove a document; the agent stops finding it at once."""
    if not await knowledge.delete_document(resources().db(), tenant_id, document_id):
        raise APIError(404, "not_found", "No such document.")
    return "", 204


@blueprint.get("/api/tenants/<tenant_id>/search")
@validate_querystring(SearchQuery)
@validate_response(SearchOut)
@require_auth(admin=True)
async def search_documents(tenant_id: str, query_args: SearchQuery) -> SearchOut:
    """Preview of `search_knowledge`: the passages the agent would get for this query, best first."""
    await _tenant_or_404(tenant_id)
    passages = await knowledge.search(resources().db(), tenant_id, query_args.q, limit=query_args.limit)
    return SearchOut(
        query=query_args.q,
        results=[PassageOut(**p.__dict__) for p in passages],
        tool_output=search_result(query_args.q, passages),
    )
