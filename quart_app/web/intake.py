"""Receiving an audio or video upload onto a named file of ours, where ffprobe and ffmpeg can read it.

Two steps, so a route can refuse the request (provider, quota, idempotency) after reading the form but
before anything is stored durably: `receive_pending` parses the multipart body (the file is spooled to
a temporary file that disappears on close), then `store` copies it to its place and syncs it to disk.
"""

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


@dataclass
class PendingMedia:
    """A parsed upload, still in the request's temporary spool: nothing durable yet."""

    stream: IO[bytes]
    size: int
    filename: str
    fields: dict[str, str]

    def close(self) -> None:
        self.stream.close()


def _copy(stream: IO[bytes], target: Path) -> int:
    """Stream the spooled upload into `target` block by block (never the whole file in memory)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stream.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, COPY_BLOCK)
        out.flush()
        os.fsync(out.fileno())  # the job is promised durable once we answer 202
        return out.tell()


async def receive_pending(field: str = "audio", max_bytes: int | None = None) -> PendingMedia:
    """The multipart file in `field` and the form's other fields, not yet stored. APIError 400/413/415.

    The type is not checked here: callers probe the content with ffprobe once it is stored.
    """
    storage, fields = await multipart_file(field, max_bytes, "media")
    stream = storage.stream
    try:
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(0)
        if size == 0:
            raise APIError(400, "empty_audio", "The uploaded file is empty.", extra={"field": field})
        if max_bytes is not None and size > max_bytes:
            raise too_large(max_bytes)
    except BaseException:
        stream.close()
        raise
    filename = os.path.basename(storage.filename or "") or "media"
    return PendingMedia(stream, size, filename, fields)


async def store(pending: PendingMedia, target: Path) -> ReceivedMedia:
    """Copy the pending upload to `target`, synced to disk, and close the spool."""
    try:
        size = await asyncio.to_thread(_copy, pending.stream, target)
    finally:
        pending.close()
    return ReceivedMedia(target, size, pending.filename)
