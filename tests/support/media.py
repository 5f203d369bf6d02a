"""Video and long-recording fixtures built with ffmpeg and espeak-ng, cached under tests/artifacts/media."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.audio import FIXTURE_DIR as AUDIO_DIR
from tests.support.audio import require_tool, spoken_path

MEDIA_DIR = AUDIO_DIR.parent / "media"
SENTENCES = (
    "Welcome to the weekly planning meeting.",
    "The budget review is moved to Thursday afternoon.",
    "Please send your slides before the end of the day.",
)
# One period of the long recording: each sentence followed by a different pause (seconds).
PAUSES = (17.0, 23.0, 11.0)


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [require_tool("ffmpeg"), "-y", "-nostdin", "-loglevel", "error", *args], check=True, capture_output=True
    )


def _cached(name: str, build) -> Path:  # type: ignore[no-untyped-def]
    MEDIA_DIR.mkdir(parents=True, exist_ok=True)
    path = MEDIA_DIR / name
    if not path.exists():
        partial = path.with_suffix(".partial" + path.suffix)
        build(partial)
        partial.rename(path)  # never leave a half-built fixture behind for the next run
    return path


def _speech_wav(text: str) -> Path:
    return spoken_path(text)


def spoken_video() -> Path:
    """An mp4 with a test picture (testsrc, H.264) and a spoken sentence (AAC)."""
    speech = _speech_wav(SENTENCES[0])
    return _cached(
        "spoken.mp4",
        lambda out: _ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10",
            "-i",
            str(speech),
            "-shortest",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "48k",
            "-f",
            "mp4",
            str(out),
        ),
    )


def silent_video() -> Path:
    """A webm with a picture and no audio track at all."""
    return _cached(
        "no-audio.webm",
        lambda out: _ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10:duration=3",
            "-an",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-f",
            "webm",
            str(out),
        ),
    )


def truncated_video() -> Path:
    """The first 40% of the spoken mp4: its index (moov, written last) is missing."""
    source = spoken_video()
    return _cached("truncated.mp4", lambda out: out.write_bytes(source.read_bytes()[: source.stat().st_size * 2 // 5]))


def long_recording(minutes: int = 30) -> Path:
    """`minutes` of a meeting: the three sentences with pauses between them, looped, as 8 kbit/s Opus in Ogg.

    One period is built from the spoken clips and anullsrc silences and encoded once, then looped by
    ffmpeg's -stream_loop with stream copy, so a 30-minute file takes about a second to make.
    """

    def build(out: Path) -> None:
        period = MEDIA_DIR / "period.wav"
        inputs: list[str] = []
        for sentence, pause in zip(SENTENCES, PAUSES, strict=True):
            inputs += [
                "-i",
                str(_speech_wav(sentence)),
                "-f",
                "lavfi",
                "-t",
                str(pause),
                "-i",
                "anullsrc=r=22050:cl=mono",
            ]
        count = 2 * len(SENTENCES)
        streams = "".join(f"[{i}:a]" for i in range(count))
        _ffmpeg(
            *inputs,
            "-filter_complex",
            f"{streams}concat=n={count}:v=0:a=1[a]",
            "-map",
            "[a]",
            "-ar",
            "16000",
            "-ac",
            "1",
            str(period),
        )
        encoded = MEDIA_DIR / "period.ogg"
        _ffmpeg("-i", str(period), "-c:a", "libopus", "-b:a", "8k", "-application", "voip", str(encoded))
        _ffmpeg("-stream_loop", "-1", "-i", str(encoded), "-t", str(minutes * 60), "-c", "copy", "-f", "ogg", str(out))

    return _cached(f"meeting-{minutes}min.ogg", build)


def faststart_video() -> Path:
    """About a minute of the meeting (one period) as an mp4 with its index first, as phones and web encoders
    write it (`-movflags +faststart`): a test picture (H.264) and the speech (AAC)."""
    period = MEDIA_DIR / "period.wav"
    if not period.exists():
        long_recording(5)  # builds period.wav on the way
    return _cached(
        "faststart.mp4",
        lambda out: _ffmpeg(
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10",
            "-i",
            str(period),
            "-shortest",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "48k",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(out),
        ),
    )


def truncated_faststart_video(fraction: float = 0.3) -> Path:
    """The first 30% of `faststart_video()` (`head -c`): its index, at the front, still describes the whole
    minute, so ffprobe reports the full length while only the first part of the audio is there."""
    source = faststart_video()
    return _cached(
        f"faststart-cut-{int(fraction * 100)}.mp4",
        lambda out: out.write_bytes(source.read_bytes()[: int(source.stat().st_size * fraction)]),
    )


def streamed_webm() -> Path:
    """Speech as WebM written to a pipe, as a browser's MediaRecorder streams it: no length in the header."""
    speech = _speech_wav(SENTENCES[1])

    def build(out: Path) -> None:
        encoded = subprocess.run(
            [require_tool("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(speech), "-c:a", "libopus"]
            + ["-f", "webm", "pipe:1"],
            check=True,
            capture_output=True,
        ).stdout  # stdout is a pipe: the muxer cannot seek back to write a duration or cues
        out.write_bytes(encoded)

    return _cached("streamed.webm", build)


def webm_without_audio_packets() -> Path:
    """`streamed_webm()` cut where its first audio packet starts: an audio track, no length, no audio."""
    source = streamed_webm()

    def build(out: Path) -> None:
        first = subprocess.run(
            [require_tool("ffprobe"), "-v", "error", "-select_streams", "a:0", "-show_entries", "packet=pos"]
            + ["-read_intervals", "%+#1", "-of", "csv=p=0", str(source)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[0]
        out.write_bytes(source.read_bytes()[: int(first)])

    return _cached("no-packets.webm", build)
