"""Receiving an audio or video upload onto a named file of ours, where ffprobe and ffmpeg can read it."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import APIError
from .uploads import multipart_file, too_large

COPY_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class ReceivedMedia:
    path: Path
    size: int
    filename: str


def _copy(stream: IO[bytes], target: Path) -> int:
    """Stream the spooled upload into `target` block by block (never the whole file in memory)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stream.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, COPY_BLOCK)
        out.flush()
        os.fsync(out.fileno())  # the job is promised durable once we answer 202
        return out.tell()


async def receive_media(
    target: Path, field: str = "audio", max_bytes: int | None = None
) -> tuple[ReceivedMedia, dict[str, str]]:
    """Move the multipart file in `field` to `target`; returns it and the form's other fields.

    The type is not checked here: callers probe the content with ffprobe. APIError 400/413/415.
    """
    storage, fields = await multipart_file(field, max_bytes, "media")
    try:
        size = await asyncio.to_thread(_copy, storage.stream, target)
    finally:
        storage.stream.close()
    if size == 0:
        raise APIError(400, "empty_audio", "The uploaded file is empty.", extra={"field": field})
    if max_bytes is not None and size > max_bytes:
        raise too_large(max_bytes)
    filename = os.path.basename(storage.filename or "") or "media"
    return ReceivedMedia(target, size, filename), fields
