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
from ..media.probe import (
    DEMUXER_FOR_FORMAT,
    check_complete,
    check_media,
    media_timeout,
    media_too_long,
    probe,
    undecodable,
)
from ..media.tools import Deadlines, ToolFailed, ToolTimedOut
from ..providers.results import AudioUpload, Segment, Transcriber, TranscriptResult
from ..settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[[float], None]  # fraction done, 0..1
# Shares of the progress bar: extraction, then chunks as they finish.
EXTRACT_SHARE = 0.25
# The whole pipeline's deadline, whatever step hangs: the media's length (in real time), at least 10 minutes.
TOTAL_MIN_S = 600.0
TOTAL_PER_MEDIA_S = 1.0


def media_deadlines(settings: Settings) -> Deadlines:
    """FFPROBE_TIMEOUT_S and FFMPEG_MIN_TIMEOUT_S as the tools' deadlines."""
    return Deadlines(probe_s=settings.ffprobe_timeout_s, decode_min_s=settings.ffmpeg_min_timeout_s)


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
    deadlines: Deadlines,
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
                size = await extract.cut(
                    source, path, chunk.start, chunk.end, timeout_s=deadlines.decode(chunk.duration)
                )
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
    deadlines: Deadlines,
    demuxer: str | None = None,
    on_progress: Progress | None = None,
) -> TranscriptResult:
    """Transcribe any audio or video file: one request if it fits `max_bytes` (None: no limit), else chunks.

    `demuxer` forces the container type (the synchronous routes know it from the content); otherwise ffprobe
    picks one of the allowed containers. Every tool runs under its deadline and the whole pipeline under
    one proportional to the media's length. Raises APIError: 400 `undecodable_media` (also when less audio
    decodes than the file declared: it is truncated), 413 `media_too_long`, 415 for playlists and other
    non-media, 422 `media_timeout`, 504 `processing_timeout`, or the provider's own errors.
    """
    info = await probe(source, timeout_s=deadlines.probe_s, demuxer=demuxer)
    check_media(info, max_seconds)
    duration = info.duration_s or 0.0
    total_s = max(TOTAL_MIN_S, duration * TOTAL_PER_MEDIA_S)
    watchdog = asyncio.timeout(total_s)
    try:
        async with watchdog:
            return await _transcribe_probed(
                transcriber,
                source,
                workdir,
                info.demuxer,
                duration,
                language=language,
                max_seconds=max_seconds,
                max_bytes=max_bytes,
                concurrency=concurrency,
                deadlines=deadlines,
                on_progress=on_progress or (lambda fraction: None),
                complete=partial(check_complete, info),
            )
    except TimeoutError:
        if not watchdog.expired():
            raise  # some step's own timeout, not the pipeline's
        raise APIError(
            504, "processing_timeout", f"Transcribing the media did not finish within {total_s:.0f} s."
        ) from None


async def extract_refusing(
    source: Path,
    target: Path,
    *,
    demuxer: str,
    max_seconds: float,
    declared_s: float | None,
    deadlines: Deadlines,
    on_progress: Callable[[float], None] | None = None,
) -> extract.Extraction:
    """`extract.extract_audio` with its failures as the client's refusals: 400 `undecodable_media` (the tool's
    last error line, or no audio decoded), 422 `media_timeout`, 413 `media_too_long` (more decoded than allowed,
    whatever the header said)."""
    try:
        extracted = await extract.extract_audio(
            source,
            target,
            demuxer=demuxer,
            max_seconds=max_seconds,
            timeout_s=deadlines.decode(declared_s),
            probe_timeout_s=deadlines.probe_s,
            on_progress=on_progress,
        )
    except ToolFailed as exc:
        raise undecodable(exc.tail.split(" | ")[-1].split(": ", 1)[-1][:120]) from None
    except ToolTimedOut as exc:
        raise media_timeout(exc) from None
    if extracted.duration_s > max_seconds:
        raise media_too_long(max_seconds)
    if extracted.duration_s <= 0:
        raise undecodable("no audio could be decoded")
    return extracted


async def _transcribe_probed(
    transcriber: Transcriber,
    source: Path,
    workdir: Path,
    demuxer: str,
    declared_s: float,
    *,
    language: str | None,
    max_seconds: float,
    max_bytes: int | None,
    concurrency: int,
    deadlines: Deadlines,
    on_progress: Progress,
    complete: Callable[[float], None],
) -> TranscriptResult:
    report = on_progress
    _make_dir(workdir)
    target = workdir / f"audio.{extract.EXTENSION}"
    extracted = await extract_refusing(
        source,
        target,
        demuxer=demuxer,
        max_seconds=max_seconds,
        declared_s=declared_s,
        deadlines=deadlines,
        on_progress=lambda seconds: report(EXTRACT_SHARE * min(1.0, seconds / max_seconds)),
    )
    complete(extracted.duration_s)  # far less audio than declared: truncated, refused before any provider call
    report(EXTRACT_SHARE)

    if max_bytes is None or extracted.size + chunking.CHUNK_OVERHEAD_BYTES <= max_bytes:
        result = await _transcribe_file(transcriber, target, language, extracted.duration_s)
        report(1.0)
        return result

    try:
        packets = await extract.packet_sizes(target, timeout_s=deadlines.decode(extracted.duration_s))
    except ToolTimedOut as exc:
        raise media_timeout(exc) from None
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
                deadlines=deadlines,
                on_done=partial(_report_done, report, len(chunks)),
            )
            break
        except ChunkTooLarge as exc:
            log.warning("%s, over the %d-byte limit: planning smaller chunks", exc, max_bytes)
            overhead = overhead * 2 + max_bytes // 10
        except ToolTimedOut as exc:
            raise media_timeout(exc) from None
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
    deadlines: Deadlines,
) -> TranscriptResult:
    """The synchronous route's path for a file over the provider's limit: the same pipeline, in the request,
    reading the upload with the demuxer of the type sniffed from its content."""
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
            deadlines=deadlines,
            demuxer=DEMUXER_FOR_FORMAT[upload.format.name],
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)


async def measure_upload(upload: AudioUpload, deadlines: Deadlines) -> float:
    """How many seconds of audio the upload holds, for metering when the provider did not say.

    The WAV header when there is one; otherwise ffprobe lists the audio packets of a copy of the upload (no
    decoding) with the sniffed type's demuxer forced. APIError 400 `undecodable_media` when its length
    cannot be told or it holds far less audio than it declares (truncated), so it is neither stored nor
    billed; 422 `media_timeout`.
    """
    if upload.duration_s is not None:
        return upload.duration_s
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="voice-measure-"))
    try:
        source = workdir / f"upload.{upload.format.extension}"
        await asyncio.to_thread(_spool_to, upload.stream, source)
        info = await probe(
            source, timeout_s=deadlines.probe_s, demuxer=DEMUXER_FOR_FORMAT[upload.format.name], scan=True
        )
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, True)
    seconds = info.extent_s if info.extent_s is not None else info.duration_s
    if not info.has_audio or seconds is None or seconds <= 0:
        raise undecodable("its length could not be determined")
    check_complete(info, seconds)
    return seconds


def _spool_to(stream: IO[bytes], target: Path) -> None:
    stream.seek(0)
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, 1024 * 1024)


def _report_done(report: Callable[[float], None], total: int, done: int) -> None:
    report(EXTRACT_SHARE + (1 - EXTRACT_SHARE) * done / total)
