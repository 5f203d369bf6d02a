"""What an uploaded media file is, decided by ffprobe from its content (never its name or content type).

Only real audio and video containers are accepted: ffprobe may choose among ALLOWED_DEMUXERS alone and
open nothing but the file itself, and every later ffmpeg run forces the demuxer ffprobe found. Playlists
and stream descriptions (m3u8/HLS, DASH, concat scripts, SDP...) are refused before any tool reads them:
they would make ffmpeg open other files (the server's own) or follow a live stream forever.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import APIError
from .tools import ToolFailed, ToolTimedOut, input_args, run_tool

# ffmpeg demuxers of audio and video files. None of them opens another URL: no hls, dash, concat, sdp,
# rtp/rtsp, image2, tee, lavfi. A match on any name of a demuxer's list (mov,mp4,m4a,...) selects it.
ALLOWED_DEMUXERS = (
    "mov",  # mp4, m4a, 3gp, mov
    "matroska",  # mkv, webm
    "ogg",
    "wav",
    "w64",
    "mp3",
    "flac",
    "aac",
    "ac3",
    "eac3",
    "amr",
    "amrnb",
    "amrwb",
    "aiff",
    "caf",
    "asf",  # wma, wmv
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "au",
    "wv",
    "ape",
    "mxf",
)
# The demuxer for each type `audio.formats.sniff` recognises (the synchronous routes force it).
DEMUXER_FOR_FORMAT = {"wav": "wav", "mp3": "mp3", "ogg": "ogg", "flac": "flac", "webm": "matroska", "m4a": "mov"}

# How much shorter the decoded audio may be than the container said before the file counts as truncated.
TRUNCATION_TOLERANCE_S = 1.0
TRUNCATION_TOLERANCE_FRACTION = 0.02

_PLAYLIST_LINE = re.compile(
    rb"^(#EXT|ffconcat|\[playlist\]|v=0|o=|m=audio|file\s|<\?xml|<MPD|<smil|<asx|<playlist|[a-z][a-z0-9+.-]*://)",
    re.IGNORECASE,
)
# Demuxers that read other media by name or address: refused as playlists when ffprobe detects one.
PLAYLIST_DEMUXERS = frozenset({"hls", "dash", "concat", "sdp", "rtsp", "rtp", "webm_dash_manifest", "mpjpeg"})
_NOT_WHITELISTED = re.compile(r"\[(\w+) @ [0-9a-fx]+\] Format not on whitelist")
_ESTIMATED = "Estimating duration from bitrate"
_HMS = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


@dataclass(frozen=True)
class MediaInfo:
    format_name: str  # ffprobe's demuxer list, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration_s: float | None  # the container's length, else the audio packets' extent; None: unknown
    audio_streams: int
    video_streams: int
    # The first audio track's own declared length (stream duration or DURATION tag; the container's when
    # there is no video), or None when the file does not say or only estimated it from the bitrate.
    audio_duration_s: float | None = None
    # Where the first audio track's packets really end, when they were scanned.
    extent_s: float | None = None

    @property
    def has_audio(self) -> bool:
        return self.audio_streams > 0

    @property
    def demuxer(self) -> str:
        """The demuxer to force on every later read: the first allowed name of ffprobe's list."""
        names = self.format_name.split(",")
        return next((n for n in names if n in ALLOWED_DEMUXERS), names[0])


def parse_probe(output: str, *, estimated: bool = False) -> MediaInfo:
    """MediaInfo from `ffprobe -of json -show_format -show_streams` output; ValueError if it is not that.

    `estimated`: ffprobe warned that it guessed the duration from the bitrate (an MP3 without a header).
    """
    data = json.loads(output or "{}")
    fmt = data.get("format")
    if not isinstance(fmt, dict) or not fmt.get("format_name"):
        raise ValueError("ffprobe found no container")
    streams = [s for s in data.get("streams") or [] if isinstance(s, dict)]
    kinds = [s.get("codec_type") for s in streams]
    # Cover art in audio files is a one-frame "video" stream flagged attached_pic: not a video.
    pictures = sum(1 for s in streams if (s.get("disposition") or {}).get("attached_pic"))
    duration = _seconds(fmt.get("duration"))
    if duration is None:
        durations = [_seconds(s.get("duration")) for s in streams]
        duration = max((d for d in durations if d is not None), default=None)
    videos = kinds.count("video") - pictures
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    declared: float | None = None
    if audio is not None and not estimated:
        tags = audio.get("tags") if isinstance(audio.get("tags"), dict) else {}
        declared = _seconds(audio.get("duration")) or _hms((tags or {}).get("DURATION"))
        if declared is None and videos == 0:
            declared = duration
    return MediaInfo(
        format_name=str(fmt["format_name"]),
        duration_s=duration,
        audio_streams=kinds.count("audio"),
        video_streams=videos,
        audio_duration_s=declared,
    )


def _seconds(value: object) -> float | None:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return seconds if seconds == seconds and seconds >= 0 else None  # NaN check


def _hms(value: object) -> float | None:
    """Matroska's per-track DURATION tag, "00:01:26.040000000"."""
    match = _HMS.match(str(value).strip()) if value else None
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def looks_like_playlist(head: bytes) -> bool:
    """Text that names other media (HLS/M3U, PLS, DASH, SMIL/ASX, concat scripts, SDP, bare URLs)."""
    if b"\0" in head:
        return False
    text = head.removeprefix(b"\xef\xbb\xbf")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return any(_PLAYLIST_LINE.match(line) for line in lines[:8])


def check_media(info: MediaInfo, max_seconds: float) -> None:
    """Refuse what cannot be transcribed, with a distinct code for each reason."""
    if not info.has_audio:
        raise APIError(400, "no_audio_stream", "The file has no audio track to transcribe.")
    if info.duration_s is None or info.duration_s <= 0:
        raise undecodable("its length could not be determined")
    if info.duration_s > max_seconds:
        raise media_too_long(max_seconds)


def check_complete(info: MediaInfo, decoded_s: float) -> None:
    """400 `undecodable_media` when far less audio came out than the container declared (a truncated file
    whose index survived, such as an mp4 written with its index first and cut short)."""
    expected = info.audio_duration_s
    if expected is None:
        return
    tolerance = max(TRUNCATION_TOLERANCE_S, expected * TRUNCATION_TOLERANCE_FRACTION)
    if decoded_s < expected - tolerance:
        raise undecodable(f"only {decoded_s:.1f} s of its {expected:.1f} s of audio could be read; it is truncated")


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


def playlist_refused() -> APIError:
    return APIError(
        415,
        "playlist_not_supported",
        "Playlists and stream descriptions (m3u8/HLS, DASH, concat lists, SDP, URLs) are not accepted; "
        "upload the audio or video file itself.",
    )


def unsupported_container() -> APIError:
    return APIError(
        415,
        "unsupported_media_type",
        "The file is not an audio or video container this service reads (mp4, mov, mkv, webm, ogg, wav, mp3, "
        "flac, m4a, aac, avi, ...).",
    )


def media_timeout(exc: ToolTimedOut) -> APIError:
    return APIError(
        422,
        "media_timeout",
        f"Reading the media took longer than {exc.timeout_s:g} s ({exc.tool}); the file is damaged or crafted.",
    )


async def probe(path: Path, *, timeout_s: float, demuxer: str | None = None, scan: bool = False) -> MediaInfo:
    """ffprobe `path` with `demuxer` forced (else any of ALLOWED_DEMUXERS), within `timeout_s`.

    When the container does not say how long it is, or `scan` is set, the first audio track's packets are
    listed (no decoding) to find where they really end. APIError: 415 `playlist_not_supported` or
    `unsupported_media_type`, 400 `undecodable_media` when it is corrupt or not media at all, 422
    `media_timeout`.
    """
    if looks_like_playlist(_head(path)):
        raise playlist_refused()
    estimated = False

    def notice(line: str) -> None:
        nonlocal estimated
        estimated = estimated or _ESTIMATED in line

    source = input_args(path, demuxer)
    if demuxer is None:
        source = ["-format_whitelist", ",".join(ALLOWED_DEMUXERS), *source]
    try:
        result = await run_tool(
            ["ffprobe", "-v", "warning", *source, "-of", "json", "-show_format", "-show_streams"],
            timeout_s=timeout_s,
            keep_stdout=True,
            on_stderr=notice,
        )
    except ToolFailed as exc:
        refused = _NOT_WHITELISTED.search(exc.tail)
        if refused is not None:
            raise (playlist_refused() if refused.group(1) in PLAYLIST_DEMUXERS else unsupported_container()) from None
        raise undecodable(_short(exc.tail)) from None
    except ToolTimedOut as exc:
        raise media_timeout(exc) from None
    try:
        info = parse_probe(result.stdout, estimated=estimated)
    except ValueError:
        raise undecodable() from None
    if not any(name in ALLOWED_DEMUXERS for name in info.format_name.split(",")):
        raise unsupported_container()
    if info.has_audio and (scan or info.duration_s is None):
        extent = await audio_extent(path, info.demuxer, timeout_s=timeout_s)
        info = replace(info, extent_s=extent, duration_s=info.duration_s if info.duration_s is not None else extent)
    return info


async def audio_extent(path: Path, demuxer: str, *, timeout_s: float) -> float | None:
    """Where the first audio track's packets end, read from the container without decoding; None if none."""
    end: float | None = None

    def feed(line: str) -> None:
        nonlocal end
        when, _, length = line.partition(",")
        start = _seconds(when)
        if start is not None:
            finish = start + (_seconds(length.split(",")[0]) or 0.0)
            end = finish if end is None else max(end, finish)

    try:
        await run_tool(
            [
                "ffprobe",
                "-v",
                "error",
                *input_args(path, demuxer),
                "-select_streams",
                "a:0",
                "-show_entries",
                "packet=pts_time,duration_time",
                "-of",
                "csv=p=0",
            ],
            timeout_s=timeout_s,
            on_stdout=feed,
        )
    except ToolFailed as exc:
        raise undecodable(_short(exc.tail)) from None
    except ToolTimedOut as exc:
        raise media_timeout(exc) from None
    return end if end is None or end > 0 else None


def _head(path: Path, size: int = 4096) -> bytes:
    """The file's first bytes (a small read on the event loop, like a stat)."""
    with path.open("rb") as handle:
        return handle.read(size)


def _short(tail: str) -> str:
    """ffprobe's last complaint without the file path (which names our spool directory)."""
    last = tail.split(" | ")[-1] if tail else ""
    return last.split(": ", 1)[-1][:120]
