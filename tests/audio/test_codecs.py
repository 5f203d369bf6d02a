"""quart_app.audio.codecs: μ-law against CPython's audioop, and the streaming 8 kHz ⇄ 24 kHz resamplers."""

from __future__ import annotations

import numpy as np
import pytest

from quart_app.audio import codecs
from quart_app.audio.codecs import (
    DELAY_8K,
    DELAY_24K,
    Downsampler24kTo8k,
    Pcm24kToUlaw8k,
    Ulaw8kToPcm24k,
    Upsampler8kTo24k,
)

audioop = pytest.importorskip("audioop", reason="audioop (the reference) left the stdlib in 3.13; use audioop-lts")

ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def pcm(samples: np.ndarray) -> bytes:
    return samples.astype("<i2").tobytes()


def samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 10_000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def snr_db(reference: np.ndarray, actual: np.ndarray) -> float:
    noise = rms(actual.astype(np.float64) - reference.astype(np.float64))
    return float("inf") if noise == 0 else 20 * np.log10(rms(reference) / noise)


def chunked(data: np.ndarray, rng: np.random.Generator, largest: int) -> list[np.ndarray]:
    """`data` cut at random places, with some empty chunks and some of a single sample."""
    pieces, start = [], 0
    while start < len(data):
        size = int(rng.choice([0, 1, 2, int(rng.integers(3, largest))]))
        pieces.append(data[start : start + size])
        start += size
    return pieces


# ---------------------------------------------------------------------------------------------- μ-law


def test_encode_matches_audioop_for_every_16_bit_sample():
    data = pcm(ALL_PCM)
    assert codecs.ulaw_encode(data) == audioop.lin2ulaw(data, 2)
    assert codecs.lin2ulaw(ALL_PCM).tobytes() == audioop.lin2ulaw(data, 2)


def test_decode_matches_audioop_for_every_code():
    assert codecs.ulaw_decode(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)
    assert pcm(codecs.ulaw2lin(np.arange(256, dtype=np.uint8))) == audioop.ulaw2lin(ALL_CODES, 2)


def test_every_code_survives_decode_then_encode_except_negative_zero():
    again = codecs.ulaw_encode(codecs.ulaw_decode(ALL_CODES))
    differing = [code for code in range(256) if again[code] != code]
    assert differing == [0x7F]  # -0 decodes to 0, which encodes as +0 (0xFF)
    assert again[0x7F] == 0xFF


def test_encode_then_decode_stays_within_the_segment_step():
    decoded = codecs.ulaw2lin(codecs.lin2ulaw(ALL_PCM)).astype(np.int32)
    error = np.abs(decoded - ALL_PCM.astype(np.int32))
    magnitude = np.abs(ALL_PCM.astype(np.int32))
    # The step doubles with each segment, so the error is relative: under 1/32 of the sample plus the
    # smallest step (8: the encoder drops 2 bits and rounds negatives towards -inf, as the reference does).
    assert np.all(error <= magnitude / 32 + 8)
    assert error[magnitude < 256].max() <= 12
    assert codecs.ulaw_decode(codecs.ulaw_encode(pcm(np.zeros(5, np.int16)))) == bytes(10)


def test_bytes_like_inputs_and_empty_input():
    data = pcm(ALL_PCM[::257])
    assert codecs.ulaw_encode(bytearray(data)) == codecs.ulaw_encode(memoryview(data)) == audioop.lin2ulaw(data, 2)
    assert codecs.ulaw_encode(b"") == b"" and codecs.ulaw_decode(b"") == b""


def test_odd_pcm_byte_count_raises():
    with pytest.raises(ValueError, match="even number of bytes"):
        codecs.ulaw_encode(b"\x00\x01\x02")
    with pytest.raises(ValueError):
        Pcm24kToUlaw8k().process(b"\x00")
    with pytest.raises(ValueError):
        Upsampler8kTo24k().process(b"\x00\x00\x00")
    with pytest.raises(ValueError):
        Downsampler24kTo8k().process(bytes(7))


def test_arrays_outside_int16_or_not_mono_are_refused():
    with pytest.raises(ValueError, match="int16 range"):
        codecs.lin2ulaw(np.array([40_000]))
    with pytest.raises(ValueError, match="mono"):
        codecs.lin2ulaw(np.zeros((2, 2), dtype=np.int16))
    assert codecs.lin2ulaw([0, 1000, -1000]).tobytes() == audioop.lin2ulaw(pcm(np.array([0, 1000, -1000])), 2)


# ------------------------------------------------------------------------------------------ resampling


def test_upsampler_gives_three_samples_per_input_sample_and_empty_chunks_are_no_ops():
    up = Upsampler8kTo24k()
    assert up.process(b"") == b""
    assert len(up.process(bytes(320))) == 960
    assert up.process(np.zeros(0, np.int16)) == b""
    assert len(up.flush()) == DELAY_24K * 2


def test_downsampler_output_count_follows_total_input_not_chunking():
    down = Downsampler24kTo8k()
    assert down.process(b"") == b""
    produced = sum(len(down.process(bytes(2 * n))) // 2 for n in (1, 1, 1, 5, 7, 479, 0, 2))
    assert produced == -(-(1 + 1 + 1 + 5 + 7 + 479 + 2) // 3)
    assert len(down.flush()) == DELAY_8K * 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_upsampling_in_any_chunks_equals_upsampling_whole(seed):
    rng = np.random.default_rng(seed)
    signal = rng.integers(-32768, 32768, 4_000).astype(np.int16)
    whole = Upsampler8kTo24k()
    expected = whole.process(pcm(signal)) + whole.flush()
    streamed = Upsampler8kTo24k()
    got = b"".join(streamed.process(pcm(piece)) for piece in chunked(signal, rng, 400)) + streamed.flush()
    assert got == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_downsampling_in_any_chunks_equals_downsampling_whole(seed):
    rng = np.random.default_rng(seed)
    signal = rng.integers(-32768, 32768, 12_001).astype(np.int16)
    whole = Downsampler24kTo8k()
    expected = whole.process(pcm(signal)) + whole.flush()
    streamed = Downsampler24kTo8k()
    got = b"".join(streamed.process(pcm(piece)) for piece in chunked(signal, rng, 1000)) + streamed.flush()
    assert got == expected


def test_phone_converters_stream_like_the_one_shot_helpers():
    rng = np.random.default_rng(7)
    ulaw = rng.integers(0, 256, 8_000).astype(np.uint8).tobytes()  # one second of Twilio payload
    inbound = Ulaw8kToPcm24k()
    frames = [inbound.process(ulaw[i : i + 160]) for i in range(0, len(ulaw), 160)]  # 20 ms media frames
    assert all(len(frame) == 960 for frame in frames)
    streamed = b"".join(frames) + inbound.flush()
    assert streamed[DELAY_24K * 2 :] == codecs.ulaw8k_to_pcm24k(ulaw)

    speech = rng.integers(-12_000, 12_000, 24_000).astype(np.int16)
    outbound = Pcm24kToUlaw8k()
    pieces = [outbound.process(pcm(piece)) for piece in chunked(speech, rng, 2_000)]
    streamed_ulaw = b"".join(pieces) + outbound.flush()
    assert streamed_ulaw[DELAY_8K:] == codecs.pcm24k_to_ulaw8k(pcm(speech))
    assert len(codecs.pcm24k_to_ulaw8k(pcm(speech))) == 8_000


def test_one_shot_helpers_are_time_aligned_and_keep_length():
    assert len(codecs.upsample_8k_to_24k(bytes(2 * 101))) == 2 * 303
    assert len(codecs.downsample_24k_to_8k(bytes(2 * 301))) == 2 * 101
    assert codecs.upsample_8k_to_24k(b"") == b"" and codecs.downsample_24k_to_8k(b"") == b""
    # A constant passes unchanged (each polyphase branch has exactly unity gain), away from the edges.
    level = np.full(800, 12_345, np.int16)
    assert set(samples(codecs.upsample_8k_to_24k(pcm(level)))[200:-200]) == {12_345}
    assert set(samples(codecs.downsample_24k_to_8k(pcm(np.repeat(level, 3))))[100:-100]) == {12_345}
    # An impulse comes out centred where it went in (linear phase, delay removed).
    impulse = np.zeros(200, np.int16)
    impulse[100] = 30_000
    assert int(np.argmax(samples(codecs.upsample_8k_to_24k(pcm(impulse))))) == 300
    impulse24 = np.zeros(600, np.int16)
    impulse24[300] = 30_000
    assert int(np.argmax(samples(codecs.downsample_24k_to_8k(pcm(impulse24))))) == 100


def test_full_scale_input_saturates_instead_of_wrapping():
    square = np.tile(np.array([32767] * 8 + [-32768] * 8, np.int16), 50)
    out = samples(codecs.upsample_8k_to_24k(pcm(square)))
    assert out.max() == 32767 and out.min() == -32768  # Gibbs overshoot clipped, not wrapped around
    assert np.all(np.abs(np.diff(out.astype(np.int32))) < 40_000)


# -------------------------------------------------------------------------------- frequency response


def test_1khz_tone_survives_8k_to_24k_and_back():
    original = tone(1000, 8000)
    up = samples(codecs.upsample_8k_to_24k(pcm(original)))
    back = samples(codecs.downsample_24k_to_8k(pcm(up)))
    middle = slice(200, -200)
    assert snr_db(original[middle], back[middle]) > 60
    # And the 24 kHz signal really is the 1 kHz sine (images of the 8 kHz rate removed).
    ideal = 10_000 * np.sin(2 * np.pi * 1000 * np.arange(24_000) / 24_000)
    assert snr_db(ideal[600:-600], up[600:-600]) > 50


def test_phone_band_passes_at_unity_gain():
    for freq in (300, 2000, 3000):
        up = samples(codecs.upsample_8k_to_24k(pcm(tone(freq, 8000))))
        assert rms(up[600:-600]) == pytest.approx(10_000 / np.sqrt(2), rel=0.01)
        down = samples(codecs.downsample_24k_to_8k(pcm(tone(freq, 24_000))))
        assert rms(down[200:-200]) == pytest.approx(10_000 / np.sqrt(2), rel=0.01)


def test_10khz_tone_at_24k_is_removed_not_aliased_to_2khz():
    high = tone(10_000, 24_000)
    down = samples(codecs.downsample_24k_to_8k(pcm(high)))
    assert rms(down[200:-200]) < rms(high) * 1e-3  # > 60 dB down (naive decimation would alias it to 2 kHz)
    naive = high[::3]
    assert rms(naive) > rms(high) * 0.5


def test_upsampling_leaves_no_image_above_4khz():
    up = samples(codecs.upsample_8k_to_24k(pcm(tone(1000, 8000))))[600:-600]
    spectrum = np.abs(np.fft.rfft(up * np.hanning(len(up))))
    freqs = np.fft.rfftfreq(len(up), 1 / 24_000)
    peak = spectrum.max()
    # The zero-stuffing images of 1 kHz sit at 7, 9, 15, 17 kHz: all at least 60 dB below the tone.
    assert spectrum[freqs > 4_500].max() < peak * 1e-3
