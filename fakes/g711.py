"""Telephone audio for the streaming fakes: G.711 μ-law / A-law, a small resampler and WAV reading (numpy).

The codecs follow ITU-T G.711 bit for bit (the classic Sun reference implementation that `audioop` and
Twilio use). Samples are int16 numpy arrays; encoded audio is `bytes`, one byte per sample.
Nothing here imports the service: the fakes must not share its audio code.
"""

from __future__ import annotations

import io
import struct

import numpy as np

ULAW_SILENCE = 0xFF  # μ-law code of a zero sample (what Twilio sends for a silent caller)
ALAW_SILENCE = 0xD5

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # in 14-bit units
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def ulaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples to G.711 μ-law bytes (14-bit reference algorithm, as `audioop.lin2ulaw`)."""
    pcm = np.asarray(samples, dtype=np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude, side="left")
    code = np.where(
        segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F)
    )
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """G.711 μ-law bytes to int16 samples."""
    codes = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


def alaw_encode(samples: np.ndarray) -> bytes:
    """int16 samples to G.711 A-law bytes."""
    pcm = np.asarray(samples, dtype=np.int32) >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    pcm = np.where(pcm >= 0, pcm, -pcm - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, pcm, side="left")
    low = np.where(segment < 2, (pcm >> 1) & 0x0F, (pcm >> np.maximum(segment, 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | low)
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    """G.711 A-law bytes to int16 samples."""
    codes = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    value = (codes & 0x0F) << 4
    segment = (codes & 0x70) >> 4
    value = np.where(segment == 0, value + 8, value + 0x108)
    value = np.where(segment > 1, value << np.maximum(segment - 1, 0), value)
    return np.where(codes & 0x80, value, -value).astype(np.int16)


def pcm16_decode(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM bytes (an odd trailing byte is ignored) to int16 samples."""
    return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2").astype(np.int16)


def pcm16_encode(samples: np.ndarray) -> bytes:
    return np.asarray(samples, dtype=np.int16).astype("<i2").tobytes()


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to int16 (clipped)."""
    return np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767).astype(np.int16)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample float samples: a windowed-sinc low-pass when downsampling, then linear interpolation.

    Plenty for telephone-band fixtures; not a mastering-grade converter.
    """
    x = np.asarray(samples, dtype=np.float64)
    if src_rate == dst_rate or x.size == 0:
        return x.copy()
    if dst_rate < src_rate:
        cutoff = 0.45 * dst_rate / src_rate  # cycles per input sample, a little under the new Nyquist
        taps = np.arange(-31, 32)
        kernel = 2 * cutoff * np.sinc(2 * cutoff * taps) * np.hanning(taps.size)
        x = np.convolve(x, kernel / kernel.sum(), mode="same")
    count = int(round(x.size * dst_rate / src_rate))
    positions = np.arange(count) * (src_rate / dst_rate)
    return np.asarray(np.interp(positions, np.arange(x.size), x), dtype=np.float64)


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """(mono float samples in [-1, 1], sample rate) of a RIFF/WAVE file.

    PCM 8/16/24/32-bit, IEEE float 32/64, μ-law and A-law; channels are averaged. Streamed WAVs with a
    0 or 0xFFFFFFFF data size use whatever bytes follow the header.
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        body = offset + 8
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack("<HHI", data[body : body + 8])
            (bits,) = struct.unpack("<H", data[body + 14 : body + 16])
            if tag == 0xFFFE and size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID
                (tag,) = struct.unpack("<H", data[body + 24 : body + 26])
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("WAV data chunk before its fmt chunk")
            end = len(data) if size in (0, 0xFFFFFFFF) else min(body + size, len(data))
            return _decode_wav_samples(data[body:end], *fmt)
        offset = body + size + (size & 1)
    raise ValueError("WAV without a data chunk")


def _decode_wav_samples(raw: bytes, tag: int, channels: int, rate: int, bits: int) -> tuple[np.ndarray, int]:
    width = bits // 8
    frame = width * channels
    raw = raw[: len(raw) - len(raw) % frame] if frame else b""
    if tag == 1 and bits == 8:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif tag == 1 and bits == 16:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif tag == 1 and bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        samples = np.where(value & 0x800000, value - (1 << 24), value).astype(np.float64) / 8388608.0
    elif tag == 1 and bits == 32:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0
    elif tag == 3 and bits in (32, 64):
        samples = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
    elif tag == 7 and bits == 8:
        samples = ulaw_decode(raw).astype(np.float64) / 32768.0
    elif tag == 6 and bits == 8:
        samples = alaw_decode(raw).astype(np.float64) / 32768.0
    else:
        raise ValueError(f"unsupported WAV encoding (format tag {tag}, {bits} bits)")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def write_wav(samples: np.ndarray, rate: int) -> bytes:
    """A 16-bit mono PCM WAV of float samples in [-1, 1] (or int16 samples)."""
    values = np.asarray(samples)
    pcm = values.astype(np.int16) if values.dtype == np.int16 else to_int16(values)
    body = pcm16_encode(pcm)
    header = b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    buffer = io.BytesIO()
    buffer.write(header + b"data" + struct.pack("<I", len(body)) + body)
    return buffer.getvalue()


def wav_to_ulaw(data: bytes, rate: int = 8000) -> bytes:
    """Any WAV this module reads, as mono μ-law at `rate` (8 kHz: what Twilio carries)."""
    samples, source_rate = read_wav(data)
    return ulaw_encode(to_int16(resample(samples, source_rate, rate)))


def tone(ms: float, rate: int, *, freq: float = 440.0, amplitude: float = 0.3, phase_samples: int = 0) -> np.ndarray:
    """int16 sine samples; `phase_samples` continues an earlier tone without a click."""
    count = int(round(ms * rate / 1000))
    t = (np.arange(count) + phase_samples) / rate
    return to_int16(amplitude * np.sin(2 * np.pi * freq * t))


def rms(samples: np.ndarray) -> float:
    """Root mean square of int16 samples, as a fraction of full scale (0.0 - 1.0)."""
    values = np.asarray(samples, dtype=np.float64)
    return float(np.sqrt(np.mean(np.square(values)))) / 32768.0 if values.size else 0.0
