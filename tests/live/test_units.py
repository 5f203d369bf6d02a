"""The pure parts of live transcription: the replay buffer and the `start` options."""

from __future__ import annotations

import pytest

from quart_app.live.options import ENCODINGS, StreamError, parse_start
from quart_app.live.replay import ReplayBuffer
from quart_app.live.session import StreamLimits


def test_replay_buffer_keeps_unconfirmed_audio_by_offset_and_caps_it() -> None:
    buffer = ReplayBuffer(max_bytes=10, block=2)
    for piece in (b"aaaa", b"bbbb", b"cccc"):
        buffer.append(piece)
    assert (buffer.total, buffer.start, buffer.retained) == (12, 4, 8)  # "aaaa" dropped to stay within 10
    assert buffer.read(6) == [b"bb", b"cccc"]
    buffer.confirm(7)  # "bbbb" ends at 8: still needed for byte 7
    assert buffer.start == 4
    buffer.confirm(8)
    assert (buffer.start, buffer.read(buffer.resume_offset(8))) == (8, [b"cccc"])
    assert buffer.resume_offset(9) == 10  # rounded up to a whole sample frame
    assert buffer.resume_offset(2) == 8  # never before what is still held
    buffer.confirm(12)
    assert (buffer.retained, buffer.read(12), buffer.resume_offset(12)) == (0, [], 12)


def test_replay_buffer_keeps_a_single_oversized_chunk() -> None:
    buffer = ReplayBuffer(max_bytes=4)
    buffer.append(b"0123456789")
    assert buffer.read(3) == [b"3456789"]


def test_start_options_defaults_and_leniency() -> None:
    options = parse_start(None, default_language="pt-BR")
    assert (options.encoding, options.sample_rate, options.channels, options.language) == (
        "linear16",
        16000,
        1,
        "pt-BR",
    )
    assert options.interim_results and options.punctuate and not options.diarize
    assert options.bytes_per_second == 32000 and options.block == 2
    flexible = parse_start(
        {"encoding": "MULAW", "sample_rate": "8000", "channels": 1.0, "punctuate": "false", "language": "en"}
    )
    assert (flexible.encoding, flexible.sample_rate, flexible.punctuate, flexible.language) == (
        "mulaw",
        8000,
        False,
        "en",
    )
    assert flexible.bytes_per_second == 8000
    webm = parse_start({"encoding": "webm", "sample_rate": 48000})
    assert webm.bytes_per_second is None and not webm.raw
    live = webm.live_options()
    assert (live.encoding, live.sample_rate, live.channels) == (None, None, None)
    assert parse_start({"encoding": "opus", "sample_rate": 48000}).live_options().encoding == "opus"


def test_start_options_errors_name_the_fields() -> None:
    with pytest.raises(StreamError) as caught:
        parse_start({"encoding": "mp3"})
    assert caught.value.code == "unsupported_encoding"
    assert caught.value.payload()["supported"] == list(ENCODINGS)
    with pytest.raises(StreamError) as caught:
        parse_start({"sample_rate": 4000, "channels": 0, "diarize": "maybe", "language": "english please"})
    assert caught.value.code == "invalid_options"
    assert set(caught.value.extra["fields"]) == {"sample_rate", "channels", "diarize", "language"}
    with pytest.raises(StreamError) as caught:
        parse_start(["linear16"])
    assert caught.value.code == "bad_message"
    with pytest.raises(StreamError) as caught:
        parse_start({}, default_language="../etc")
    assert caught.value.extra["fields"] == {"lang": "must be a language code such as en, en-US or pt-BR"}


def test_the_ticker_looks_often_enough_for_the_smallest_limit() -> None:
    assert StreamLimits().tick_s == 0.5
    assert StreamLimits(idle_timeout_s=0.4).tick_s == pytest.approx(0.1)
    assert StreamLimits(keepalive_s=0.01).tick_s == 0.02
