"""Telephone audio: G.711 μ-law and 8 kHz ⇄ 24 kHz resampling of 16-bit mono PCM, for the phone path.

Twilio Media Streams carry μ-law at 8 kHz; OpenAI's realtime/speech audio is PCM16 at 24 kHz. This module
converts between the two without I/O and without a Python loop per sample:

- **μ-law** (`lin2ulaw` / `ulaw2lin`, and `ulaw_encode` / `ulaw_decode` on bytes): lookup tables built from
  the ITU-T G.711 algorithm, bit-exact with CPython's `audioop.lin2ulaw` / `audioop.ulaw2lin` (which drop the
  two lowest bits before encoding, as G.711's 14-bit μ-law does).
- **Resampling by 3** (`Upsampler8kTo24k`, `Downsampler24kTo8k`): a polyphase FIR low-pass (Kaiser-windowed
  sinc, 145 taps at 24 kHz, cutoff 3.6 kHz: -0.1 dB at 3.3 kHz, ≤ -74 dB from 4 kHz up) that removes the
  images when upsampling and the aliases when downsampling.
- **Stream converters** for a call (`Ulaw8kToPcm24k`, `Pcm24kToUlaw8k`): μ-law decode + upsample, and
  downsample + μ-law encode.

Streaming: every resampler keeps its filter history between `process()` calls, and the arithmetic is exact
integer arithmetic (coefficients are integers scaled by 2**20; samples times coefficients summed in float64
stay far below 2**53, so no rounding happens whatever the summation order), so feeding a stream in any chunk
sizes gives *bit-identical* output to feeding it in one piece.

Latency: the filter is causal and linear-phase, so streamed output lags the input by `DELAY_24K` samples at
24 kHz (= `DELAY_8K` at 8 kHz, 3 ms). `flush()` returns the tail still inside the filter. The one-shot
helpers (`upsample_8k_to_24k`, `downsample_24k_to_8k`, `ulaw8k_to_pcm24k`, `pcm24k_to_ulaw8k`) remove that
lag: their output is time-aligned with the input and exactly 3× longer (or ⌈n/3⌉ samples long).

PCM is signed 16-bit little-endian mono (bytes) or an int16 numpy array; the byte form of every function
takes any bytes-like object and rejects an odd byte count with ValueError.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DELAY_8K",
    "DELAY_24K",
    "FILTER_TAPS",
    "Downsampler24kTo8k",
    "Pcm24kToUlaw8k",
    "Ulaw8kToPcm24k",
    "Upsampler8kTo24k",
    "downsample_24k_to_8k",
    "lin2ulaw",
    "pcm24k_to_ulaw8k",
    "ulaw2lin",
    "ulaw8k_to_pcm24k",
    "ulaw_decode",
    "ulaw_encode",
    "upsample_8k_to_24k",
]

Int16Array = NDArray[np.int16]
UInt8Array = NDArray[np.uint8]
BytesLike = bytes | bytearray | memoryview

_PCM16_LE: Final = np.dtype("<i2")

# --------------------------------------------------------------------------------------------- G.711 μ-law

_ULAW_BIAS: Final = 0x84
_ULAW_SEGMENT_ENDS: Final = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)


def _build_encode_table() -> UInt8Array:
    """μ-law code for every 16-bit sample, indexed by the sample's bit pattern read as uint16.

    G.711 encodes 14-bit magnitudes: the sample is shifted right by 2 (arithmetically), the magnitude gets
    the bias (0x84 >> 2), its segment is the first whose end it does not exceed, and the code is
    segment<<4 | 4 mantissa bits, complemented (with the sign bit clear for negative samples).
    """
    samples = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)
    value = samples >> 2
    negative = value < 0
    magnitude = np.minimum(np.where(negative, -value, value), 32635) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude, side="left").astype(np.int32)
    mantissa = (magnitude >> np.minimum(segment + 1, 31)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8)


def _build_decode_table() -> Int16Array:
    """The 16-bit sample for each of the 256 μ-law codes (G.711 expansion)."""
    inverted = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((inverted & 0x0F) << 3) + _ULAW_BIAS) << ((inverted & 0x70) >> 4)
    return np.where(inverted & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS).astype(np.int16)


_ENCODE_TABLE: Final[UInt8Array] = _build_encode_table()
_DECODE_TABLE: Final[Int16Array] = _build_decode_table()


def _pcm_array(pcm: BytesLike | ArrayLike) -> Int16Array:
    """int16 samples from PCM16 LE bytes (ValueError on an odd length) or from anything array-like."""
    if isinstance(pcm, bytes | bytearray | memoryview):
        data = memoryview(pcm).cast("B")
        if len(data) % 2:
            raise ValueError(f"PCM16 needs an even number of bytes, got {len(data)}")
        return np.frombuffer(data, dtype=_PCM16_LE).astype(np.int16, copy=False)
    array = np.asarray(pcm)
    if array.ndim != 1:
        raise ValueError(f"expected mono samples (a 1-D array), got shape {array.shape}")
    if array.dtype != np.int16:
        if array.size and (array.min() < -32768 or array.max() > 32767):
            raise ValueError("samples outside the int16 range")
        array = array.astype(np.int16)
    return array


def _ulaw_array(codes: BytesLike | ArrayLike) -> UInt8Array:
    if isinstance(codes, bytes | bytearray | memoryview):
        return np.frombuffer(memoryview(codes).cast("B"), dtype=np.uint8)
    array = np.asarray(codes)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D array of μ-law codes, got shape {array.shape}")
    return array.astype(np.uint8, copy=False)


def _pcm_bytes(samples: Int16Array) -> bytes:
    return samples.astype(_PCM16_LE, copy=False).tobytes()


def lin2ulaw(samples: BytesLike | ArrayLike) -> UInt8Array:
    """μ-law codes (uint8 array) for 16-bit samples; same codes as `audioop.lin2ulaw(data, 2)`."""
    return _ENCODE_TABLE[_pcm_array(samples).view(np.uint16)]


def ulaw2lin(codes: BytesLike | ArrayLike) -> Int16Array:
    """16-bit samples (int16 array) for μ-law codes; same samples as `audioop.ulaw2lin(data, 2)`."""
    return _DECODE_TABLE[_ulaw_array(codes)]


def ulaw_encode(pcm: BytesLike | ArrayLike) -> bytes:
    """PCM16 LE bytes (or int16 samples) → μ-law bytes, one byte per sample."""
    return lin2ulaw(pcm).tobytes()


def ulaw_decode(ulaw: BytesLike | ArrayLike) -> bytes:
    """μ-law bytes → PCM16 LE bytes, two bytes per code."""
    return _pcm_bytes(ulaw2lin(ulaw))


# ------------------------------------------------------------------------------------------ the FIR filter

FACTOR: Final = 3
FILTER_TAPS: Final = 145  # odd, and (taps - 1) divisible by 2 * FACTOR: the group delay is whole at both rates
_CUTOFF_HZ: Final = 3600.0
_KAISER_BETA: Final = 0.1102 * (75.0 - 8.7)  # Kaiser's formula for ~75 dB stop-band attenuation
_SCALE_BITS: Final = 20
_SCALE: Final = 1 << _SCALE_BITS
_PHASE_TAPS: Final = -(-FILTER_TAPS // FACTOR)  # 49: taps per polyphase branch (prototype padded to 147)

DELAY_24K: Final = (FILTER_TAPS - 1) // 2  # 72 samples at 24 kHz
DELAY_8K: Final = DELAY_24K // FACTOR  # 24 samples at 8 kHz


def _integer_taps(gain: int) -> NDArray[np.float64]:
    """The low-pass prototype at 24 kHz scaled to integers, padded to a multiple of FACTOR taps.

    With gain 1 the taps sum to exactly 2**20 (unity DC gain when downsampling). With gain 3 (upsampling
    after zero-stuffing) each polyphase branch sums to exactly 2**20, so a constant 8 kHz input gives the
    same constant at 24 kHz with no ripple. The sums are fixed by nudging the largest tap of each branch.
    """
    n = np.arange(FILTER_TAPS) - (FILTER_TAPS - 1) / 2
    normalized_cutoff = 2 * _CUTOFF_HZ / (8000 * FACTOR)
    prototype = normalized_cutoff * np.sinc(normalized_cutoff * n) * np.kaiser(FILTER_TAPS, _KAISER_BETA)
    prototype /= prototype.sum()
    taps = np.zeros(_PHASE_TAPS * FACTOR)
    taps[:FILTER_TAPS] = np.round(prototype * gain * _SCALE)
    if gain == 1:
        taps[DELAY_24K] += _SCALE - taps.sum()
    else:
        for phase in range(FACTOR):
            branch_centre = phase + FACTOR * int(np.argmax(taps[phase::FACTOR]))
            taps[branch_centre] += _SCALE - taps[phase::FACTOR].sum()
    return taps


_UP_TAPS: Final = _integer_taps(FACTOR)  # g[3k + p] drives output phase p
_UP_BRANCHES: Final = [np.ascontiguousarray(_UP_TAPS[p::FACTOR]) for p in range(FACTOR)]
_DOWN_TAPS: Final = _integer_taps(1)
_DOWN_BRANCHES: Final = [np.ascontiguousarray(_DOWN_TAPS[p::FACTOR]) for p in range(FACTOR)]
_DOWN_WINDOW: Final = _PHASE_TAPS * FACTOR  # 147 input samples per output (the last 2 taps are zero)


def _to_int16(accumulated: NDArray[np.float64]) -> Int16Array:
    """Round the exact integer sums back from the 2**20 scale (half up) and saturate to int16.

    Scaling by a power of two and adding 0.5 are exact in float64 for these magnitudes, so this is the
    same as `(acc + 2**19) >> 20` on integers, only cheaper.
    """
    scaled = accumulated * (1.0 / _SCALE)
    scaled += 0.5
    np.floor(scaled, out=scaled)
    np.maximum(scaled, -32768.0, out=scaled)
    np.minimum(scaled, 32767.0, out=scaled)
    return scaled.astype(np.int16)


class Upsampler8kTo24k:
    """Streaming 8 kHz → 24 kHz PCM16 resampler: three output samples per input sample, `DELAY_24K` behind.

    `process()` any number of samples at a time; the concatenated output does not depend on the chunking.
    `flush()` returns the last `DELAY_24K` samples still in the filter and resets the stream.
    """

    delay: Final = DELAY_24K

    def __init__(self) -> None:
        self._history = np.zeros(_PHASE_TAPS - 1)

    def reset(self) -> None:
        self._history = np.zeros(_PHASE_TAPS - 1)

    def process_array(self, samples: BytesLike | ArrayLike) -> Int16Array:
        x = _pcm_array(samples)
        if not x.size:
            return np.zeros(0, dtype=np.int16)
        buffer = np.concatenate((self._history, x.astype(np.float64)))
        self._history = buffer[-(_PHASE_TAPS - 1) :].copy()
        # y[3n + p] = sum_k g[3k + p] * x[n - k]: one 'valid' convolution per output phase, interleaved.
        phases = [np.convolve(buffer, branch, mode="valid") for branch in _UP_BRANCHES]
        return _to_int16(np.stack(phases, axis=1).reshape(-1))

    def process(self, pcm: BytesLike | ArrayLike) -> bytes:
        """PCM16 LE at 8 kHz in, PCM16 LE at 24 kHz out (3× the samples)."""
        return _pcm_bytes(self.process_array(pcm))

    def flush_array(self) -> Int16Array:
        tail = self.process_array(np.zeros(DELAY_8K, dtype=np.int16))
        self.reset()
        return tail

    def flush(self) -> bytes:
        return _pcm_bytes(self.flush_array())


class Downsampler24kTo8k:
    """Streaming 24 kHz → 8 kHz PCM16 resampler with anti-aliasing, `DELAY_8K` output samples behind.

    Output sample n is the filtered input at 24 kHz sample 3n, so after N input samples in total,
    ⌈N / 3⌉ samples have come out whatever the chunk sizes. `flush()` returns the `DELAY_8K` samples still
    in the filter and resets the stream.
    """

    delay: Final = DELAY_8K

    def __init__(self) -> None:
        self._pending = np.zeros(_DOWN_WINDOW - 1)

    def reset(self) -> None:
        self._pending = np.zeros(_DOWN_WINDOW - 1)

    def process_array(self, samples: BytesLike | ArrayLike) -> Int16Array:
        x = _pcm_array(samples)
        buffer = np.concatenate((self._pending, x.astype(np.float64))) if x.size else self._pending
        count = (len(buffer) - _DOWN_WINDOW) // FACTOR + 1 if len(buffer) >= _DOWN_WINDOW else 0
        self._pending = buffer[FACTOR * count :].copy()
        if not count:
            return np.zeros(0, dtype=np.int16)
        # y[r] = sum_i h[i] * buffer[3r + 146 - i]; split i = 3k + p into three decimated convolutions.
        total = np.zeros(count)
        span = count + _PHASE_TAPS - 1
        for phase, branch in enumerate(_DOWN_BRANCHES):
            start = FACTOR - 1 - phase
            total += np.convolve(buffer[start : start + FACTOR * span : FACTOR], branch, mode="valid")
        return _to_int16(total)

    def process(self, pcm: BytesLike | ArrayLike) -> bytes:
        """PCM16 LE at 24 kHz in, PCM16 LE at 8 kHz out (a third of the samples)."""
        return _pcm_bytes(self.process_array(pcm))

    def flush_array(self) -> Int16Array:
        tail = self.process_array(np.zeros(DELAY_24K, dtype=np.int16))
        self.reset()
        return tail

    def flush(self) -> bytes:
        return _pcm_bytes(self.flush_array())


class Ulaw8kToPcm24k:
    """Inbound phone audio: μ-law 8 kHz bytes (e.g. Twilio media payloads) → PCM16 LE 24 kHz, streaming."""

    delay: Final = DELAY_24K

    def __init__(self) -> None:
        self._resampler = Upsampler8kTo24k()

    def process(self, ulaw: BytesLike | ArrayLike) -> bytes:
        return self._resampler.process(ulaw2lin(ulaw))

    def flush(self) -> bytes:
        return self._resampler.flush()

    def reset(self) -> None:
        self._resampler.reset()


class Pcm24kToUlaw8k:
    """Outbound phone audio: PCM16 LE 24 kHz → μ-law 8 kHz bytes, streaming (ValueError on odd byte counts)."""

    delay: Final = DELAY_8K

    def __init__(self) -> None:
        self._resampler = Downsampler24kTo8k()

    def process(self, pcm: BytesLike | ArrayLike) -> bytes:
        return ulaw_encode(self._resampler.process_array(pcm))

    def flush(self) -> bytes:
        return ulaw_encode(self._resampler.flush_array())

    def reset(self) -> None:
        self._resampler.reset()


# ------------------------------------------------------------------------------------ one-shot, time-aligned


def upsample_8k_to_24k(pcm: BytesLike | ArrayLike) -> bytes:
    """A whole 8 kHz PCM16 buffer → 24 kHz, time-aligned (no filter lag), exactly 3× the samples."""
    resampler = Upsampler8kTo24k()
    out = np.concatenate((resampler.process_array(pcm), resampler.flush_array()))
    return _pcm_bytes(out[DELAY_24K:])


def downsample_24k_to_8k(pcm: BytesLike | ArrayLike) -> bytes:
    """A whole 24 kHz PCM16 buffer → 8 kHz, time-aligned (no filter lag), ⌈n / 3⌉ samples."""
    resampler = Downsampler24kTo8k()
    out = np.concatenate((resampler.process_array(pcm), resampler.flush_array()))
    return _pcm_bytes(out[DELAY_8K:])


def ulaw8k_to_pcm24k(ulaw: BytesLike | ArrayLike) -> bytes:
    """A whole μ-law 8 kHz buffer → PCM16 LE 24 kHz, time-aligned; use `Ulaw8kToPcm24k` for a live stream."""
    return upsample_8k_to_24k(ulaw2lin(ulaw))


def pcm24k_to_ulaw8k(pcm: BytesLike | ArrayLike) -> bytes:
    """A whole PCM16 LE 24 kHz buffer → μ-law 8 kHz, time-aligned; use `Pcm24kToUlaw8k` for a live stream."""
    return ulaw_encode(np.frombuffer(downsample_24k_to_8k(pcm), dtype=_PCM16_LE))
