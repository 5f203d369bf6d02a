"""Long media to one transcript: extract the audio, split it for size-limited providers, stitch the parts.

`transcribe_media` is the whole pipeline over a file on disk; `stitch` is the pure part that puts chunk
results back on one timeline. Every temporary file lives under `workdir`, which the caller removes.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

from ..audio import formats
from ..errors import APIError
from ..media import chunking, extract
from ..media.probe import media_too_long, undecodable
from ..media.tools import ToolFailed
from ..providers.results import AudioUpload, Segment, Transcriber, TranscriptResult

log = logging.getLogger(__name__)

Progress = Callable[[float], None]  # fraction done, 0..1
# Shares of the progress bar: extraction, then chunks as they finish.
EXTRACT_SHARE = 0.25


@dataclass(frozen=True)
class ChunkResult:
    chunk: chunking.Chunk
    result: TranscriptResult


def stitch(parts: Sequence[ChunkResult], model: str) -> TranscriptResult:
    """One result from chunk results in any order: text joined in chunk order, segments moved by each
    chunk's start. A chunk that came back without segments contributes one segment spanning the chunk."""
    ordered = sorted(parts, key=lambda p: p.chunk.index)
    texts: list[str] = []
    segments: list[Segment] = []
    for part in ordered:
        offset, text = part.chunk.start, part.result.text.strip()
        if text:
            texts.append(text)
        if part.result.segments:
            segments.extend(
                Segment(
                    start=round(s.start + offset, 3),
                    end=round(min(s.end, part.chunk.duration) + offset, 3),
                    text=s.text,
                )
                for s in part.result.segments
            )
        elif text:
            segments.append(Segment(start=part.chunk.start, end=part.chunk.end, text=text))
    language = next((p.result.language for p in ordered if p.result.language), None)
    duration = ordered[-1].chunk.end if ordered else 0.0
    return TranscriptResult(
        text=" ".join(texts), language=language, duration_s=duration, model=model, segments=segments
    )


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _as_upload(path: Path, duration: float | None) -> AudioUpload:
    return AudioUpload(path.open("rb"), path.stat().st_size, path.name, formats.FLAC, duration)


async def _transcribe_file(
    transcriber: Transcriber, path: Path, language: str | None, duration: float | None
) -> TranscriptResult:
    upload = _as_upload(path, duration)
    try:
        return await transcriber.transcribe(upload, language)
    finally:
        upload.close()


async def _with_retry(
    transcriber: Transcriber, path: Path, chunk: chunking.Chunk, language: str | None
) -> TranscriptResult:
    """One retry per chunk: providers drop single requests now and then; a second failure is the job's."""
    try:
        return await _transcribe_file(transcriber, path, language, chunk.duration)
    except APIError as exc:
        if exc.status in (400, 413):  # the audio itself was refused: sending it again cannot help
            raise
        log.warning("chunk %d (%.1f-%.1fs) failed (%s); retrying once", chunk.index, chunk.start, chunk.end, exc.code)
        return await _transcribe_file(transcriber, path, language, chunk.duration)


async def transcribe_chunks(
    transcriber: Transcriber,
    source: Path,
    chunks: Sequence[chunking.Chunk],
    workdir: Path,
    *,
    language: str | None,
    concurrency: int,
    max_bytes: int,
    on_done: Callable[[int], None] | None = None,
) -> list[ChunkResult]:
    """Cut and transcribe every chunk, at most `concurrency` at a time; the first failure cancels the rest."""
    gate = asyncio.Semaphore(concurrency)
    finished = 0

    async def one(chunk: chunking.Chunk) -> ChunkResult:
        nonlocal finished
        async with gate:
            path = workdir / f"chunk-{chunk.index:04d}.{extract.EXTENSION}"
            try:
                size = await extract.cut(source, path, chunk.start, chunk.end)
                if size > max_bytes:
                    raise ChunkTooLarge(chunk, size)
                result = await _with_retry(transcriber, path, chunk, language)
            finally:
                path.unlink(missing_ok=True)
        finished += 1
        if on_done is not None:
            on_done(finished)
        return ChunkResult(chunk, result)

    try:
        async with asyncio.TaskGroup() as group:  # a failure cancels the siblings, and we wait for them
            tasks = [group.create_task(one(chunk)) for chunk in chunks]
    except BaseExceptionGroup as failures:
        raise _first_leaf(failures) from None
    return [task.result() for task in tasks]


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


class ChunkTooLarge(Exception):
    def __init__(self, chunk: chunking.Chunk, size: int) -> None:
        super().__init__(f"chunk {chunk.index} is {size} bytes")
        self.chunk, self.size = chunk, size


async def transcribe_media(
    transcriber: Transcriber,
    source: Path,
    workdir: Path,
    *,
    language: str | None,
    max_seconds: float,
    max_bytes: int | None,
    concurrency: int,
    on_progress: Progress | None = None,
) -> TranscriptResult:
    """Transcribe any audio or video file: one request if it fits `max_bytes` (None: no limit), else chunks.

    Raises APIError: 400 `undecodable_media`, 413 `media_too_long`, or the provider's own errors.
    """
    report = on_progress or (lambda fraction: None)
    _make_dir(workdir)
    target = workdir / f"audio.{extract.EXTENSION}"
    try:
        extracted = await extract.extract_audio(
            source,
            target,
            max_seconds=max_seconds,
            on_progress=lambda seconds: report(EXTRACT_SHARE * min(1.0, seconds / max_seconds)),
        )
    except ToolFailed as exc:
        raise undecodable(exc.tail.split(" | ")[-1].split(": ", 1)[-1][:120]) from None
    if extracted.duration_s > max_seconds:
        raise media_too_long(max_seconds)
    if extracted.duration_s <= 0:
        raise undecodable("no audio could be decoded")
    report(EXTRACT_SHARE)

    if max_bytes is None or extracted.size + chunking.CHUNK_OVERHEAD_BYTES <= max_bytes:
        result = await _transcribe_file(transcriber, target, language, extracted.duration_s)
        report(1.0)
        return result

    packets = await extract.packet_sizes(target)
    overhead = chunking.CHUNK_OVERHEAD_BYTES
    # Re-encoded chunks come out within a few frames of the plan; if one is still over, plan tighter.
    for _ in range(3):
        chunks = chunking.plan_chunks(extracted.duration_s, extracted.silences, packets, max_bytes, overhead=overhead)
        log.info("transcribing %.0fs of audio in %d chunks via %s", extracted.duration_s, len(chunks), transcriber.name)
        try:
            parts = await transcribe_chunks(
                transcriber,
                target,
                chunks,
                workdir,
                language=language,
                concurrency=concurrency,
                max_bytes=max_bytes - 1024,
                on_done=partial(_report_done, report, len(chunks)),
            )
            break
        except ChunkTooLarge as exc:
            log.warning("%s, over the %d-byte limit: planning smaller chunks", exc, max_bytes)
            overhead = overhead * 2 + max_bytes // 10
    else:
        raise APIError(500, "chunking_failed", "The audio could not be split under the provider's size limit.")
    result = stitch(parts, model=parts[0].result.model if parts else "")
    return TranscriptResult(
        text=result.text,
        language=result.language or language,
        duration_s=extracted.duration_s,
        model=result.model,
        segments=result.segments,
    )


async def transcribe_upload_chunked(
    transcriber: Transcriber,
    upload: AudioUpload,
    language: str | None,
    *,
    max_seconds: float,
    max_bytes: int,
    concurrency: int,
) -> TranscriptResult:
    """The synchronous route's path for a file over the provider's limit: the same pipeline, in the request."""
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="voice-sync-"))
    try:
        source = workdir / f"upload.{upload.format.extension}"
        await asyncio.to_thread(_spool_to, upload.stream, source)
        return await transcribe_media(
            transcriber,
            source,
            workdir / "work",
            language=language,
            max_seconds=max_seconds,
            max_bytes=max_bytes,
            concurrency=concurrency,
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)


def _spool_to(stream: IO[bytes], target: Path) -> None:
    stream.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, 1024 * 1024)


def _report_done(report: Callable[[float], None], total: int, done: int) -> None:
    report(EXTRACT_SHARE + (1 - EXTRACT_SHARE) * done / total)
