"""Stitching chunk results back together, and SRT/VTT rendering parsed back."""

from __future__ import annotations

import re

from quart_app.media.chunking import Chunk
from quart_app.providers.results import Segment, TranscriptResult
from quart_app.transcribe.long_media import ChunkResult, stitch
from quart_app.transcribe.subtitles import to_srt, to_vtt


def _result(text: str, segments: list[Segment], language: str | None = "en") -> TranscriptResult:
    return TranscriptResult(text=text, language=language, duration_s=None, model="whisper-1", segments=segments)


def test_stitch_orders_by_chunk_and_offsets_segments() -> None:
    parts = [  # finished out of order: 2, 0, 1
        ChunkResult(Chunk(2, 120.5, 150.0), _result("Third.", [Segment(0.5, 3.0, "Third.")])),
        ChunkResult(
            Chunk(0, 0.0, 60.25),
            _result("First one. Second.", [Segment(0.0, 2.0, "First one."), Segment(2.0, 4.5, "Second.")], None),
        ),
        ChunkResult(Chunk(1, 60.25, 120.5), _result("No segments here.", [])),
    ]
    result = stitch(parts, "whisper-1")
    assert result.text == "First one. Second. No segments here. Third."
    assert [(s.start, s.end, s.text) for s in result.segments] == [
        (0.0, 2.0, "First one."),
        (2.0, 4.5, "Second."),
        (60.25, 120.5, "No segments here."),
        (121.0, 123.5, "Third."),
    ]
    assert result.language == "en" and result.duration_s == 150.0


def test_stitch_clamps_segments_that_overrun_their_chunk() -> None:
    result = stitch([ChunkResult(Chunk(0, 10.0, 20.0), _result("x", [Segment(9.0, 12.0, "x")]))], "m")
    assert result.segments == [Segment(19.0, 20.0, "x")]


SEGMENTS = [
    Segment(0.0, 1.5, "Hello <world> & co."),
    Segment(1.5, 3661.25, "Line\n\nbreaks --> here"),
    Segment(4000.0, 4001.0, "   "),
]


def _parse(text: str, separator: str) -> list[tuple[float, float, str]]:
    clock = rf"(\d\d):(\d\d):(\d\d){re.escape(separator)}(\d\d\d)"
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        match = next(re.fullmatch(rf"{clock} --> {clock}", line) for line in lines if "-->" in line[:30])
        h1, m1, s1, f1, h2, m2, s2, f2 = (int(g) for g in match.groups())
        start = h1 * 3600 + m1 * 60 + s1 + f1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + f2 / 1000
        cues.append((start, end, "\n".join(lines[lines.index(match.group(0)) + 1 :])))
    return cues


def test_srt_parses_back() -> None:
    text = to_srt(SEGMENTS)
    blocks = text.strip().split("\n\n")
    assert [b.split("\n")[0] for b in blocks] == ["1", "2"]  # numbered from 1, the blank cue dropped
    assert _parse(text, ",") == [(0.0, 1.5, "Hello <world> & co."), (1.5, 3661.25, "Line breaks --> here")]


def test_vtt_parses_back_and_escapes() -> None:
    text = to_vtt(SEGMENTS)
    assert text.startswith("WEBVTT\n\n")
    cues = _parse(text.split("\n\n", 1)[1], ".")
    assert cues == [(0.0, 1.5, "Hello &lt;world&gt; &amp; co."), (1.5, 3661.25, "Line breaks --&gt; here")]
