"""Job audio at intake: real ffmpeg, a spoken recording cut into stored-size Opus chunks; results as stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from quart_app.media.tools import Deadlines
from quart_app.providers.results import Segment, TranscriptResult
from quart_app.transcribe.job_audio import prepare_job_audio, result_from_json, result_json
from tests.support.media import long_recording


async def test_a_recording_becomes_opus_chunks_at_pauses(tmp_path: Path) -> None:
    recording = long_recording(2)
    prepared = await prepare_job_audio(
        recording, tmp_path / "work", max_seconds=600, max_bytes=None, chunk_s=30, deadlines=Deadlines(20, 60)
    )
    assert prepared.duration_s == pytest.approx(120, abs=1)
    chunks = prepared.chunks
    assert len(chunks) >= 4 and all(c.duration_s <= 30.001 for c in chunks)
    assert chunks[0].start_s == 0 and sum(c.duration_s for c in chunks) == pytest.approx(prepared.duration_s, abs=0.01)
    for chunk in chunks:
        data = chunk.path.read_bytes()
        assert data[:4] == b"OggS" and b"OpusHead" in data[:64] and len(data) == chunk.size
        # 24 kbit/s at most (plus container pages): about 3 kB per second of audio.
        assert chunk.size <= chunk.duration_s * 24_000 / 8 * 1.15 + 4096
    assert not (tmp_path / "work" / "audio.flac").exists()  # the lossless intermediate is gone


def test_chunk_results_round_trip_as_stored() -> None:
    result = TranscriptResult(
        "hello there", "en", 12.5, "whisper-1", [Segment(0.0, 1.5, "hello"), Segment(1.5, 3, "there")]
    )
    assert result_from_json(result_json(result)) == result
    assert result_from_json("{}") == TranscriptResult("", None, None, "", [])
