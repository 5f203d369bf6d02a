"""Receiving one audio file from a multipart form, spooled to a temporary file, type decided by content."""

from __future__ import annotations

import os

from quart import request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from ..audio import formats
from ..errors import APIError
from ..providers.results import AudioUpload
from ..transcribe.idempotency import HEADER as IDEMPOTENCY_HEADER
from ..transcribe.idempotency import parse_key


async def receive_audio(field: str = "audio", max_bytes: int | None = None) -> tuple[AudioUpload, dict[str, str]]:
    """The uploaded audio and the form's other fields. Raises APIError 400/413/415 with a JSON message."""
    storage, fields = await multipart_file(field, max_bytes, "audio")
    stream = storage.stream
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    if max_bytes is not None and size > max_bytes:
        raise too_large(max_bytes)
    if size == 0:
        raise APIError(400, "empty_audio", "The uploaded audio file is empty.", extra={"field": field})
    filename = os.path.basename(storage.filename or "") or "audio"
    fmt = formats.sniff(formats.read_head(stream))
    if fmt is None:
        claimed = formats.claimed_format(storage.filename, storage.mimetype)
        if claimed is not None:
            raise APIError(
                400,
                "undecodable_audio",
                f"The file does not contain valid {claimed.name} audio.",
                extra={"field": field},
            )
        raise APIError(
            415,
            "unsupported_media_type",
            f"Unsupported audio type; send one of: {', '.join(formats.SUPPORTED_NAMES)}.",
            extra={"field": field, "supported": list(formats.SUPPORTED_NAMES)},
        )
    duration = formats.wav_duration(stream) if fmt is formats.WAV else None
    if duration == 0:
        raise APIError(400, "empty_audio", "The WAV file holds no audio frames.", extra={"field": field})
    return AudioUpload(stream, size, filename, fmt, duration), fields


async def multipart_file(field: str, max_bytes: int | None, kind: str) -> tuple[FileStorage, dict[str, str]]:
    """The spooled file in multipart field `field` and the form's other fields, or APIError 400/413/415."""
    try:
        files = await request.files
        form = await request.form
    except RequestEntityTooLarge:
        raise too_large(max_bytes) from None
    if request.mimetype != "multipart/form-data":
        raise APIError(415, "unsupported_media_type", f"Send multipart/form-data with the file in field '{field}'.")
    storage: FileStorage | None = files.get(field)
    if storage is None:
        raise APIError(
            400, "missing_file", f"Multipart field '{field}' with the {kind} file is required.", extra={"field": field}
        )
    return storage, {k: v for k, v in form.items()}


def too_large(max_bytes: int | None) -> APIError:
    limit = f" of {max_bytes // (1024 * 1024)} MB" if max_bytes else ""
    return APIError(413, "payload_too_large", f"The upload exceeds the limit{limit}.")


def idempotency_key() -> str | None:
    """The request's Idempotency-Key header (None when absent), validated before the body is read: 400."""
    return parse_key(request.headers.get(IDEMPOTENCY_HEADER))
