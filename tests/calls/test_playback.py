"""What the caller heard, from marks and the call clock; the two audio paths (μ-law passthrough, PCM16 24 kHz)."""

from __future__ import annotations

import base64

import numpy as np

from quart_app.audio.codecs import pcm24k_to_ulaw8k, ulaw8k_to_pcm24k
from quart_app.calls.audio_path import LinearPcm, UlawPassthrough, b64_length
from quart_app.calls.playback import Playback


def test_marks_and_the_call_clock_give_the_heard_position() -> None:
    playback = Playback()
    a1 = playback.sent("item_a", 800, now_ms=1000)  # 100 ms each
    a2 = playback.sent("item_a", 800, now_ms=1000)
    assert playback.playing(1000) and playback.heard(1000) == 0
    assert playback.heard(1060) == 480  # 60 ms into the first chunk
    assert playback.heard(1500) == 800  # never past a mark Twilio has not echoed
    assert playback.echoed(a1, now_ms=1120) is not None
    assert playback.heard(1140) == 800 + 160
    cut, markers = playback.clear(1140)
    assert [(c.item_id, c.heard_ms) for c in cut] == [("item_a", 120)] and markers == []
    assert playback.echoed(a2, now_ms=1140) is None  # echoed because of the clear: not played
    assert not playback.playing(1140)


def test_items_queued_behind_the_one_playing_were_not_heard() -> None:
    playback = Playback()
    playback.sent("first", 800, now_ms=0)
    playback.sent("second", 800, now_ms=0)
    hangup = playback.marker("hangup")
    cut, markers = playback.clear(40)
    assert [(c.item_id, c.heard_ms) for c in cut] == [("first", 40), ("second", 0)]
    assert markers == [hangup]


def test_playback_restarts_after_an_underrun() -> None:
    playback = Playback()
    first = playback.sent("a", 160, now_ms=0)
    playback.echoed(first, now_ms=20)
    assert not playback.playing(500)
    playback.sent("b", 160, now_ms=500)  # nothing queued: it starts playing now, not at 20 ms
    assert playback.heard(510) == 160 + 80


def test_b64_length_without_decoding() -> None:
    for n in range(0, 20):
        assert b64_length(base64.b64encode(bytes(n)).decode()) == n


def test_passthrough_leaves_payloads_alone() -> None:
    path = UlawPassthrough()
    payload = base64.b64encode(bytes(range(160))).decode()
    assert path.inbound(payload) is payload
    assert path.outbound(payload) == (payload, 160, 20.0)


def test_linear_pcm_path_matches_the_one_shot_converters() -> None:
    rng = np.random.default_rng(7)
    ulaw = rng.integers(0, 256, 160 * 50, dtype=np.uint8).tobytes()
    path = LinearPcm()
    inbound = b"".join(
        base64.b64decode(path.inbound(base64.b64encode(ulaw[i : i + 160]).decode())) for i in range(0, len(ulaw), 160)
    )
    expected = ulaw8k_to_pcm24k(ulaw)
    # streamed output lags by the filter delay; past it, it is the time-aligned one-shot result
    assert len(inbound) == len(expected) and inbound[72 * 2 :] == expected[: -72 * 2]
    pcm = expected
    out, ms = b"", 0.0
    for i in range(0, len(pcm), 4801):  # odd chunk sizes: a delta may end inside a sample
        payload, samples, generated = path.outbound(base64.b64encode(pcm[i : i + 4801]).decode())
        chunk = base64.b64decode(payload)
        assert samples == len(chunk)
        out += chunk
        ms += generated
    out += base64.b64decode(path.flush())
    assert ms == len(pcm) / 48
    assert out[24:] == pcm24k_to_ulaw8k(pcm)
