"""What an uploaded media file is, decided by ffprobe from its content (never its name or content type)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import APIError
from .tools import ToolFailed, run_tool


@dataclass(frozen=True)
class MediaInfo:
    format_name: str  # ffprobe's demuxer list, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration_s: float | None  # None when the container does not say (streamed WebM, raw ADTS)
    audio_streams: int
    video_streams: int

    @property
    def has_audio(self) -> bool:
        return self.audio_streams > 0


def parse_probe(output: str) -> MediaInfo:
    """MediaInfo from `ffprobe -of json -show_format -show_streams` output; ValueError if it is not that."""
    data = json.loads(output or "{}")
    fmt = data.get("format")
    if not isinstance(fmt, dict) or not fmt.get("format_name"):
        raise ValueError("ffprobe found no container")
    kinds = [s.get("codec_type") for s in data.get("streams") or [] if isinstance(s, dict)]
    # Cover art in audio files is a one-frame "video" stream flagged attached_pic: not a video.
    pictures = sum(1 for s in data.get("streams") or [] if (s.get("disposition") or {}).get("attached_pic"))
    duration = _seconds(fmt.get("duration"))
    if duration is None:
        durations = [_seconds(s.get("duration")) for s in data.get("streams") or []]
        duration = max((d for d in durations if d is not None), default=None)
    return MediaInfo(
        format_name=str(fmt["format_name"]),
        duration_s=duration,
        audio_streams=kinds.count("audio"),
        video_streams=kinds.count("video") - pictures,
    )


def _seconds(value: object) -> float | None:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if seconds == seconds and seconds >= 0 else None  # NaN check


def check_media(info: MediaInfo, max_seconds: float) -> None:
    """Refuse what cannot be transcribed, with a distinct code for each reason."""
    if not info.has_audio:
        raise APIError(400, "no_audio_stream", "The file has no audio track to transcribe.")
    if info.duration_s is not None and info.duration_s > max_seconds:
        raise media_too_long(max_seconds)


def media_too_long(max_seconds: float) -> APIError:
    return APIError(
        413,
        "media_too_long",
        f"The media is longer than the limit of {max_seconds / 60:g} minutes.",
        extra={"max_minutes": max_seconds / 60},
    )


def undecodable(detail: str = "") -> APIError:
    return APIError(
        400,
        "undecodable_media",
        "The file is not a readable audio or video file" + (f" ({detail})" if detail else "") + ".",
    )


async def probe(path: Path) -> MediaInfo:
    """ffprobe `path`; APIError 400 `undecodable_media` when it is corrupt or not media at all."""
    try:
        result = await run_tool(
            ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", str(path)], keep_stdout=True
        )
    except ToolFailed as exc:
        raise undecodable(_short(exc.tail)) from None
    try:
        return parse_probe(result.stdout)
    except ValueError:
        raise undecodable() from None


def _short(tail: str) -> str:
    """ffprobe's last complaint without the file path (which names our spool directory)."""
    last = tail.split(" | ")[-1] if tail else ""
    return last.split(": ", 1)[-1][:120]
