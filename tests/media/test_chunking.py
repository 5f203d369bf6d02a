"""Chunk planning and silence parsing: pure functions, no ffmpeg."""

from __future__ import annotations

import pytest

from quart_app.media.chunking import ByteTimeline, plan_chunks
from quart_app.media.extract import ProgressLog, Silence, parse_silences

# A steady 1000 bytes per second in 0.25 s packets, for 100 s.
PACKETS = [(i * 0.25, 250) for i in range(400)]


def _check_cover(chunks, duration: float) -> None:  # type: ignore[no-untyped-def]
    assert chunks[0].start == 0 and chunks[-1].end == pytest.approx(duration)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start == before.end and after.index == before.index + 1


def test_small_audio_is_one_chunk() -> None:
    chunks = plan_chunks(100.0, [], PACKETS, max_bytes=200_000, overhead=0)
    assert [(c.start, c.end) for c in chunks] == [(0.0, 100.0)]


def test_cuts_fall_in_the_middle_of_the_last_pause_that_fits() -> None:
    silences = [Silence(10, 12), Silence(25, 27), Silence(31, 33), Silence(58, 60), Silence(80, 90)]
    chunks = plan_chunks(100.0, silences, PACKETS, max_bytes=35_000, overhead=0)
    _check_cover(chunks, 100.0)
    # 35 s fit per chunk: the last pause middle before 35 is 32, then before 67 is 59, then 85.
    assert [c.end for c in chunks] == [32.0, 59.0, 85.0, 100.0]
    timeline = ByteTimeline(PACKETS)
    assert all(timeline.between(c.start, c.end) <= 35_000 for c in chunks)


def test_no_pause_means_a_hard_cut_at_the_limit() -> None:
    chunks = plan_chunks(100.0, [], PACKETS, max_bytes=30_000, overhead=0)
    _check_cover(chunks, 100.0)
    assert [c.end for c in chunks] == [30.0, 60.0, 90.0, 100.0]


def test_overhead_is_kept_free_and_uneven_bitrates_are_respected() -> None:
    # Dense speech (4 kB/s) for the first 20 s, then near silence (100 B/s).
    packets = [(i * 0.25, 1000) for i in range(80)] + [(20 + i * 0.25, 25) for i in range(320)]
    chunks = plan_chunks(100.0, [Silence(4, 5), Silence(40, 42)], packets, max_bytes=30_000, overhead=10_000)
    timeline = ByteTimeline(packets)
    assert all(timeline.between(c.start, c.end) <= 20_000 for c in chunks)
    assert chunks[0].end == 4.5 and chunks[-1].end == 100.0
    with pytest.raises(ValueError):
        plan_chunks(100.0, [], packets, max_bytes=1000, overhead=1000)


def test_silencedetect_log_parsing() -> None:
    log = [
        "[silencedetect @ 0x55d] silence_start: 3.52",
        "size=     12kB time=00:00:05.00 bitrate=  19.7kbits/s speed= 500x",
        "[silencedetect @ 0x55d] silence_end: 7.1 | silence_duration: 3.58",
        "[silencedetect @ 0x55d] silence_start: -0.01",
        "[silencedetect @ 0x55d] silence_end: 0.9 | silence_duration: 0.91",
        "[silencedetect @ 0x55d] silence_start: 58.2",  # still silent when the file ends
    ]
    assert parse_silences(log, 60.0) == [Silence(3.52, 7.1), Silence(0.0, 0.9), Silence(58.2, 60.0)]
    seen: list[float] = []
    progress = ProgressLog(seen.append)
    for line in ("frame=0", "out_time_us=1500000", "out_time_us=N/A", "out_time_us=3000000", "progress=end"):
        progress.feed(line)
    assert progress.seconds == 3.0 and seen == [1.5, 3.0]


def test_max_chunk_s_caps_the_length_even_when_the_bytes_fit() -> None:
    silences = [Silence(10, 12), Silence(25, 27), Silence(31, 33), Silence(58, 60), Silence(80, 90)]
    chunks = plan_chunks(100.0, silences, PACKETS, max_bytes=200_000, overhead=0, max_chunk_s=30)
    _check_cover(chunks, 100.0)
    assert all(c.duration <= 30 for c in chunks)
    # At pauses where one fits in the 30 s: 26, then 32 (the pause 31-33, before 56), 59, 85, 100.
    assert [c.end for c in chunks] == [26.0, 32.0, 59.0, 85.0, 100.0]
    assert [c.end for c in plan_chunks(100.0, [], PACKETS, 200_000, overhead=0, max_chunk_s=40)] == [40, 80, 100]
