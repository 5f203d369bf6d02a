"""ffprobe/ffmpeg steps on real files: type from content, refusals, extraction, cancellation."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from quart_app.errors import APIError
from quart_app.media import extract
from quart_app.media.probe import check_media, probe
from tests.support.media import long_recording, silent_video, spoken_video, truncated_video


def _children() -> set[int]:
    found: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as handle:
            found.update(int(pid) for pid in handle.read().split())
    return found


async def test_probe_decides_from_content_not_name(tmp_path: Path) -> None:
    disguised = tmp_path / "holiday.wav"  # an mp4 named like a WAV
    shutil.copy(spoken_video(), disguised)
    info = await probe(disguised)
    assert "mp4" in info.format_name and info.audio_streams == 1 and info.video_streams == 1
    assert 2 < (info.duration_s or 0) < 6
    check_media(info, 60)
    with pytest.raises(APIError) as too_long:
        check_media(info, 1.0)
    assert (too_long.value.status, too_long.value.code) == (413, "media_too_long")


@pytest.mark.parametrize(
    ("fixture", "status", "code"),
    [
        (silent_video, 400, "no_audio_stream"),
        (truncated_video, 400, "undecodable_media"),
        (None, 400, "undecodable_media"),
    ],
)
async def test_refusals_have_distinct_codes(tmp_path: Path, fixture, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    path = fixture() if fixture else tmp_path / "noise.mp4"
    if fixture is None:
        path.write_bytes(os.urandom(4096))
    with pytest.raises(APIError) as refused:
        check_media(await probe(path), 600)
    assert (refused.value.status, refused.value.code) == (status, code)


async def test_extract_long_recording_finds_the_pauses(tmp_path: Path) -> None:
    seen: list[float] = []
    result = await extract.extract_audio(
        long_recording(), tmp_path / "a.flac", max_seconds=3600, on_progress=seen.append
    )
    assert result.duration_s == pytest.approx(1800, abs=1)
    assert seen and seen[-1] == pytest.approx(1800, abs=2)
    # 30 periods of three pauses (17, 23 and 11 s minus the speech's own tail) are found.
    long_pauses = [s for s in result.silences if s.end - s.start > 8]
    assert 88 <= len(long_pauses) <= 92
    packets = await extract.packet_sizes(result.path)
    assert sum(size for _, size in packets) <= result.size
    cut = await extract.cut(result.path, tmp_path / "c.flac", 600.0, 660.0)
    assert cut > 0 and await extract.audio_duration(tmp_path / "c.flac") == pytest.approx(60, abs=0.1)


async def test_cancelled_extraction_kills_ffmpeg(tmp_path: Path) -> None:
    before = _children()
    task = asyncio.create_task(extract.extract_audio(long_recording(), tmp_path / "a.flac", max_seconds=3600))
    await asyncio.sleep(0.3)
    assert _children() - before, "ffmpeg should be running"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not (_children() - before)
