"""Rendering transcript segments as SubRip (SRT) and WebVTT subtitles."""

from __future__ import annotations

from collections.abc import Sequence

from ..providers.results import Segment

CONTENT_TYPES = {"srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8"}


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cues(segments: Sequence[Segment]) -> list[tuple[float, float, str]]:
    """Non-empty cues with end >= start; a blank line inside text would end the cue early, so fold lines."""
    cues = []
    for segment in segments:
        text = " ".join(segment.text.split())
        if text:
            cues.append((segment.start, max(segment.end, segment.start), text))
    return cues


def to_srt(segments: Sequence[Segment]) -> str:
    blocks = [
        f"{number}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n"
        for number, (start, end, text) in enumerate(_cues(segments), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(segments: Sequence[Segment]) -> str:
    blocks = ["WEBVTT\n"]
    for start, end, text in _cues(segments):
        # "-->" may not appear in a cue's text, and & and < start entities and tags.
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{_clock(start, '.')} --> {_clock(end, '.')}\n{text}\n")
    return "\n".join(blocks)


def render(segments: Sequence[Segment], fmt: str) -> str:
    return to_srt(segments) if fmt == "srt" else to_vtt(segments)
