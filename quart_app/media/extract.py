"""ffmpeg: the upload's audio as mono 16 kHz FLAC on disk, the silences in it, and chunks cut from it.

FLAC rather than Opus: lossless (what recognisers like best), sample-exact cuts, and every tool (ours,
providers, the fakes) reads its duration from the header even when it arrives through a pipe.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .tools import input_args, run_tool

SAMPLE_RATE = 16_000
EXTENSION = "flac"
# A pause long and quiet enough to cut at without splitting a word.
SILENCE_NOISE_DB = -35
SILENCE_MIN_S = 0.4

_SILENCE_START = re.compile(r"silence_start:\s*(-?[\d.]+)")
_SILENCE_END = re.compile(r"silence_end:\s*(-?[\d.]+)")


@dataclass(frozen=True)
class Silence:
    start: float
    end: float

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


@dataclass
class Extraction:
    path: Path
    duration_s: float
    silences: list[Silence] = field(default_factory=list)
    size: int = 0


class SilenceLog:
    """Collects silencedetect's stderr lines into Silence intervals as ffmpeg prints them."""

    def __init__(self) -> None:
        self.silences: list[Silence] = []
        self._open: float | None = None

    def feed(self, line: str) -> None:
        if (m := _SILENCE_START.search(line)) is not None:
            self._open = max(0.0, float(m.group(1)))
        elif (m := _SILENCE_END.search(line)) is not None and self._open is not None:
            self.silences.append(Silence(self._open, float(m.group(1))))
            self._open = None

    def finish(self, duration: float) -> list[Silence]:
        """The intervals, with a silence still open at the end of the file closed there."""
        if self._open is not None and duration > self._open:
            self.silences.append(Silence(self._open, duration))
            self._open = None
        return self.silences


def parse_silences(lines: Iterable[str], duration: float) -> list[Silence]:
    log = SilenceLog()
    for line in lines:
        log.feed(line)
    return log.finish(duration)


class ProgressLog:
    """`-progress` key=value lines: the output position in seconds."""

    def __init__(self, on_seconds: Callable[[float], None] | None) -> None:
        self.seconds = 0.0
        self._on_seconds = on_seconds

    def feed(self, line: str) -> None:
        key, _, value = line.partition("=")
        if key == "out_time_us" and value.strip().lstrip("-").isdigit():
            self.seconds = max(self.seconds, int(value) / 1_000_000)
            if self._on_seconds is not None:
                self._on_seconds(self.seconds)


async def extract_audio(
    source: Path,
    target: Path,
    *,
    demuxer: str,
    max_seconds: float,
    timeout_s: float,
    probe_timeout_s: float,
    on_progress: Callable[[float], None] | None = None,
) -> Extraction:
    """Decode `source` (read with `demuxer` only, video included) into mono 16 kHz FLAC at `target`.

    One pass also runs silencedetect. Output stops at `max_seconds` + 1 so a file whose header lied about its
    length cannot run on; the caller compares the returned duration with its limit. ffmpeg gets `timeout_s`.
    """
    silences = SilenceLog()
    progress = ProgressLog(on_progress)
    await run_tool(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-nostats",
            "-loglevel",
            "info",
            "-y",
            *input_args(source, demuxer),
            "-map",
            "0:a:0",
            "-vn",
            "-sn",
            "-dn",
            "-af",
            f"silencedetect=noise={SILENCE_NOISE_DB}dB:d={SILENCE_MIN_S}",
            "-ac",
            "1",
            "-ar",
            str(SAMPLE_RATE),
            "-sample_fmt",
            "s16",
            "-c:a",
            "flac",
            "-t",
            f"{max_seconds + 1:.3f}",
            "-progress",
            "pipe:1",
            "-f",
            "flac",
            str(target),
        ],
        timeout_s=timeout_s,
        on_stdout=progress.feed,
        on_stderr=silences.feed,
    )
    duration = await audio_duration(target, timeout_s=probe_timeout_s)
    return Extraction(target, duration, silences.finish(duration), file_size(target))


async def audio_duration(path: Path, *, timeout_s: float) -> float:
    """The length of one of our own FLAC files, from its header."""
    result = await run_tool(
        ["ffprobe", "-v", "error", *input_args(path, "flac"), "-show_entries", "format=duration", "-of", "csv=p=0"],
        timeout_s=timeout_s,
        keep_stdout=True,
    )
    try:
        return float(result.stdout.strip())
    except ValueError:
        return 0.0


async def packet_sizes(path: Path, *, timeout_s: float) -> list[tuple[float, int]]:
    """(time, bytes) of every audio packet of our FLAC: where the bytes are along the timeline, for chunking."""
    packets: list[tuple[float, int]] = []

    def feed(line: str) -> None:
        when, _, size = line.partition(",")
        try:
            packets.append((float(when), int(size.split(",")[0])))
        except ValueError:
            pass

    await run_tool(
        [
            "ffprobe",
            "-v",
            "error",
            *input_args(path, "flac"),
            "-select_streams",
            "a:0",
            "-show_entries",
            "packet=pts_time,size",
            "-of",
            "csv=p=0",
        ],
        timeout_s=timeout_s,
        on_stdout=feed,
    )
    return packets


async def cut(source: Path, target: Path, start: float, end: float, *, timeout_s: float) -> int:
    """Re-encode [start, end) of our FLAC `source` to `target` (sample-exact); returns its size in bytes."""
    return await _encode_segment(
        source, target, start, end, ["-sample_fmt", "s16", "-c:a", "flac", "-f", "flac"], timeout_s=timeout_s
    )


async def _encode_segment(
    source: Path, target: Path, start: float, end: float, codec: list[str], *, timeout_s: float
) -> int:
    """ffmpeg [start, end) of our FLAC `source`, mono at SAMPLE_RATE, with the `codec` arguments, into `target`;
    returns its size in bytes."""
    await run_tool(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-ss",
            f"{start:.3f}",
            *input_args(source, "flac"),
            "-t",
            f"{end - start:.3f}",
            "-map_metadata",
            "-1",
            "-ac",
            "1",
            "-ar",
            str(SAMPLE_RATE),
            *codec,
            str(target),
        ],
        timeout_s=timeout_s,
    )
    return file_size(target)


def file_size(path: Path) -> int:
    """A stat is a metadata read that does not wait on the disk's data; fine on the event loop."""
    return path.stat().st_size


# What job audio is stored as: Opus in Ogg, mono 16 kHz at a speech bitrate (about 11 MB per hour of media, a
# fifth of FLAC's), which OpenAI and Deepgram both accept. Chunks are encoded from the lossless extraction.
SPEECH_EXTENSION = "ogg"
SPEECH_BITRATE = "24k"


async def encode_speech(source: Path, target: Path, start: float, end: float, *, timeout_s: float) -> int:
    """Encode [start, end) of our FLAC `source` as mono 16 kHz Opus in Ogg at `target`; returns its size."""
    opus = ["-c:a", "libopus", "-b:a", SPEECH_BITRATE, "-application", "voip", "-f", "ogg"]
    return await _encode_segment(source, target, start, end, opus, timeout_s=timeout_s)
