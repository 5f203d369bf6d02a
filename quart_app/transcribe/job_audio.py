"""A job's audio at intake: probe the upload, extract its speech and cut it into provider-sized chunks.

Each chunk is Opus in Ogg (mono, 16 kHz, 24 kbit/s: about 11 MB per hour of media) encoded from a lossless
extraction, cut at pauses so that it fits the provider's upload limit and is at most JOB_CHUNK_S long. The
chunks then live in the database (`db.jobs`, table job_chunks), so any instance can run the job and a resumed
job skips the chunks already transcribed. Every file here is under `workdir`, which the caller removes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import APIError
from ..media import chunking, extract
from ..media.probe import check_complete, check_media, media_timeout, probe
from ..media.tools import Deadlines, ToolTimedOut
from ..providers.results import Segment, TranscriptResult
from .long_media import extract_refusing

log = logging.getLogger(__name__)

# Headroom under the provider's limit for the multipart form around a chunk.
FORM_OVERHEAD_BYTES = 16 * 1024


@dataclass(frozen=True)
class PreparedChunk:
    index: int
    start_s: float
    duration_s: float
    path: Path
    size: int


@dataclass(frozen=True)
class PreparedAudio:
    duration_s: float
    chunks: list[PreparedChunk]

    @property
    def size(self) -> int:
        return sum(c.size for c in self.chunks)


async def prepare_job_audio(
    source: Path,
    workdir: Path,
    *,
    max_seconds: float,
    max_bytes: int | None,
    chunk_s: float,
    deadlines: Deadlines,
    demuxer: str | None = None,
) -> PreparedAudio:
    """Probe `source`, extract its audio and encode it in chunks under `workdir`.

    APIError 400 `undecodable_media` / `no_audio_stream`, 413 `media_too_long`, 415 for playlists and other
    non-media, 422 `media_timeout` (any tool past its deadline), 500 `chunking_failed`.
    """
    info = await probe(source, timeout_s=deadlines.probe_s, demuxer=demuxer)
    check_media(info, max_seconds)
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    lossless = workdir / f"audio.{extract.EXTENSION}"
    extracted = await extract_refusing(
        source,
        lossless,
        demuxer=info.demuxer,
        max_seconds=max_seconds,
        declared_s=info.duration_s,
        deadlines=deadlines,
    )
    check_complete(info, extracted.duration_s)
    try:
        packets = await extract.packet_sizes(lossless, timeout_s=deadlines.decode(extracted.duration_s))
        # The plan counts the lossless packets: an Opus chunk is several times smaller, so it fits too.
        limit = (max_bytes or 2**40) - FORM_OVERHEAD_BYTES
        overhead = chunking.CHUNK_OVERHEAD_BYTES
        for _ in range(3):
            plan = chunking.plan_chunks(
                extracted.duration_s, extracted.silences, packets, limit, overhead=overhead, max_chunk_s=chunk_s
            )
            chunks = await _encode(lossless, workdir, plan, deadlines)
            if all(c.size <= limit for c in chunks):
                break
            overhead = overhead * 2 + limit // 10
        else:
            raise APIError(500, "chunking_failed", "The audio could not be split under the provider's size limit.")
    except ToolTimedOut as exc:
        raise media_timeout(exc) from None
    finally:
        await asyncio.to_thread(lossless.unlink, True)
    prepared = PreparedAudio(extracted.duration_s, chunks)
    log.info("job audio: %.0fs in %d chunks, %d bytes", prepared.duration_s, len(chunks), prepared.size)
    return prepared


async def _encode(
    lossless: Path, workdir: Path, plan: Sequence[chunking.Chunk], deadlines: Deadlines
) -> list[PreparedChunk]:
    chunks = []
    for chunk in plan:
        path = workdir / f"chunk-{chunk.index:05d}.{extract.SPEECH_EXTENSION}"
        size = await extract.encode_speech(
            lossless, path, chunk.start, chunk.end, timeout_s=deadlines.decode(chunk.duration)
        )
        chunks.append(PreparedChunk(chunk.index, chunk.start, chunk.duration, path, size))
    return chunks


# ----- chunk results as stored (job_chunks.result) ---------------------------------------------------------------


def result_json(result: TranscriptResult) -> str:
    return json.dumps(
        {
            "text": result.text,
            "language": result.language,
            "duration_s": result.duration_s,
            "model": result.model,
            "segments": [[s.start, s.end, s.text] for s in result.segments],
        },
        separators=(",", ":"),
    )


def result_from_json(text: str) -> TranscriptResult:
    data: dict[str, Any] = json.loads(text)
    return TranscriptResult(
        text=str(data.get("text") or ""),
        language=data.get("language"),
        duration_s=data.get("duration_s"),
        model=str(data.get("model") or ""),
        segments=[Segment(float(s), float(e), str(t)) for s, e, t in data.get("segments") or []],
    )
