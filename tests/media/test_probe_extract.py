"""ffprobe/ffmpeg steps on real files: type from content, refusals, extraction, deadlines, cancellation."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from quart_app.errors import APIError
from quart_app.media import extract
from quart_app.media.probe import check_complete, check_media, probe
from quart_app.media.tools import Deadlines, ToolTimedOut, run_tool
from tests.support.media import (
    long_recording,
    silent_video,
    spoken_video,
    streamed_webm,
    truncated_faststart_video,
    truncated_video,
    webm_without_audio_packets,
)

PROBE_S = 30.0  # hang guards only: these files take milliseconds
DEADLINES = Deadlines(probe_s=PROBE_S, decode_min_s=120.0)


def _children() -> set[int]:
    found: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as handle:
            found.update(int(pid) for pid in handle.read().split())
    return found


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie waiting for a reaper (or a pid gone) is dead."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_probe_decides_from_content_not_name(tmp_path: Path) -> None:
    disguised = tmp_path / "holiday.wav"  # an mp4 named like a WAV
    shutil.copy(spoken_video(), disguised)
    info = await probe(disguised, timeout_s=PROBE_S)
    assert "mp4" in info.format_name and info.audio_streams == 1 and info.video_streams == 1
    assert info.demuxer == "mov"
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
        (webm_without_audio_packets, 400, "undecodable_media"),  # no length in the header, no audio to measure
        (None, 400, "undecodable_media"),
    ],
)
async def test_refusals_have_distinct_codes(tmp_path: Path, fixture, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    path = fixture() if fixture else tmp_path / "noise.mp4"
    if fixture is None:
        path.write_bytes(os.urandom(4096))
    with pytest.raises(APIError) as refused:
        check_media(await probe(path, timeout_s=PROBE_S), 600)
    assert (refused.value.status, refused.value.code) == (status, code)


async def test_streamed_webm_without_a_length_is_measured_from_its_packets() -> None:
    info = await probe(streamed_webm(), timeout_s=PROBE_S)
    assert info.extent_s is not None and info.duration_s == info.extent_s
    assert 2 < info.duration_s < 6
    check_media(info, 600)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{target}\n#EXT-X-ENDLIST\n", "playlist_not_supported"),
        ("#EXTM3U\n#EXTINF:10,\nfile://{target}\n", "playlist_not_supported"),
        ("ffconcat version 1.0\nfile {target}\n", "playlist_not_supported"),
        ("v=0\no=- 0 0 IN IP4 127.0.0.1\nm=audio 5004 RTP/AVP 0\n", "playlist_not_supported"),
        # The text sniff sees a NUL (not text); ffprobe's demuxer whitelist still refuses HLS.
        ("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{target}\n#EXT-X-ENDLIST\n#\0\n", "playlist_not_supported"),
        ("1\n00:00:00,000 --> 00:00:01,000\nsubtitles are not media\n", "unsupported_media_type"),
    ],
)
async def test_playlists_and_other_containers_are_refused(tmp_path: Path, text: str, code: str) -> None:
    secret = tmp_path / "server-secret.mp3"
    shutil.copy(spoken_video(), secret)
    upload = tmp_path / "source"
    upload.write_bytes(text.format(target=secret).encode())
    with pytest.raises(APIError) as refused:
        await probe(upload, timeout_s=PROBE_S)
    assert (refused.value.status, refused.value.code) == (415, code)


async def test_extraction_of_a_truncated_faststart_mp4_is_caught(tmp_path: Path) -> None:
    """The index survives at the front: ffprobe reports the full minute, ffmpeg decodes a fraction, exit 0."""
    info = await probe(truncated_faststart_video(), timeout_s=PROBE_S)
    assert info.audio_duration_s is not None and info.audio_duration_s > 50
    result = await extract.extract_audio(
        truncated_faststart_video(),
        tmp_path / "a.flac",
        demuxer=info.demuxer,
        max_seconds=3600,
        timeout_s=DEADLINES.decode(info.duration_s),
        probe_timeout_s=PROBE_S,
    )
    assert 5 < result.duration_s < 0.5 * info.audio_duration_s
    with pytest.raises(APIError) as refused:
        check_complete(info, result.duration_s)
    assert (refused.value.status, refused.value.code) == (400, "undecodable_media")
    check_complete(info, info.audio_duration_s - 0.1)  # a whole file passes


async def test_extract_long_recording_finds_the_pauses(tmp_path: Path) -> None:
    seen: list[float] = []
    result = await extract.extract_audio(
        long_recording(),
        tmp_path / "a.flac",
        demuxer="ogg",
        max_seconds=3600,
        timeout_s=DEADLINES.decode(1800),
        probe_timeout_s=PROBE_S,
        on_progress=seen.append,
    )
    assert result.duration_s == pytest.approx(1800, abs=1)
    assert seen and seen[-1] == pytest.approx(1800, abs=2)
    # 30 periods of three pauses (17, 23 and 11 s minus the speech's own tail) are found.
    long_pauses = [s for s in result.silences if s.end - s.start > 8]
    assert 88 <= len(long_pauses) <= 92
    packets = await extract.packet_sizes(result.path, timeout_s=PROBE_S)
    assert sum(size for _, size in packets) <= result.size
    cut = await extract.cut(result.path, tmp_path / "c.flac", 600.0, 660.0, timeout_s=PROBE_S)
    assert cut > 0 and await extract.audio_duration(tmp_path / "c.flac", timeout_s=PROBE_S) == pytest.approx(
        60, abs=0.1
    )


async def test_cancelled_extraction_kills_ffmpeg(tmp_path: Path) -> None:
    before = _children()
    task = asyncio.create_task(
        extract.extract_audio(
            long_recording(),
            tmp_path / "a.flac",
            demuxer="ogg",
            max_seconds=3600,
            timeout_s=600,
            probe_timeout_s=PROBE_S,
        )
    )
    for _ in range(200):  # hang guard: until ffmpeg is up
        if _children() - before:
            break
        await asyncio.sleep(0.05)
    assert _children() - before, "ffmpeg should be running"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not (_children() - before)


async def test_a_tool_past_its_deadline_is_killed_with_its_process_group(tmp_path: Path) -> None:
    """A tool that never ends (here a shell and the helper it started) is killed as a group at its deadline."""
    pids = tmp_path / "pids"
    script = f"echo $$ > {pids}; sleep 600 & echo $! >> {pids}; wait"
    with pytest.raises(ToolTimedOut) as timed_out:
        await run_tool(["sh", "-c", script], timeout_s=0.5)
    assert timed_out.value.timeout_s == 0.5
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2
    for _ in range(100):  # the kernel finishes delivering SIGKILL; hang guard only
        if not any(_alive(pid) for pid in started):
            break
        await asyncio.sleep(0.05)
    assert not any(_alive(pid) for pid in started), "the shell or its helper outlived the deadline"
