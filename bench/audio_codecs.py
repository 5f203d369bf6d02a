"""Phone-path audio conversion per 20 ms frame: quart_app.audio.codecs vs CPython's audioop, in one run.

Inbound (caller → model): 160 bytes of μ-law at 8 kHz (one Twilio media frame) → 960 bytes of PCM16 at 24 kHz.
Outbound (model → caller): 960 bytes of PCM16 at 24 kHz → 160 bytes of μ-law at 8 kHz.

Ours: the streaming converters `Ulaw8kToPcm24k` / `Pcm24kToUlaw8k` (G.711 tables + 145-tap polyphase FIR).
Peer: `audioop.ulaw2lin` + `audioop.ratecv(..., 8000, 24000, state)` and `ratecv(..., 24000, 8000, state)` +
`audioop.lin2ulaw`, the stdlib path (C, linear interpolation, no anti-aliasing filter; gone in Python 3.13).

Each timing is the median over `--audio-codecs-repeats` runs of `--audio-codecs-frames` consecutive frames of
speech-like noise on one converter (state carried, as on a call); "budget" is the share of the frame's
20 ms of real time spent converting it. Quality columns, measured on whole tones through the same per-frame
path: `1 kHz SNR` (inbound: against the ideal 24 kHz sine; outbound: against the ideal 8 kHz sine, μ-law
noise included) and the level of the worst unwanted component (inbound: images above 4.5 kHz of a 1 kHz
tone; outbound: what a 10 kHz tone at 24 kHz leaves at 8 kHz, where it would alias to 2 kHz).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

from quart_app.audio.codecs import DELAY_8K, DELAY_24K, Pcm24kToUlaw8k, Ulaw8kToPcm24k, ulaw_encode

with warnings.catch_warnings():  # the peer; gone from the stdlib in 3.13 (pip audioop-lts brings it back)
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # keep `bench/run.py` able to import (and run the other benchmarks)
        audioop = None  # type: ignore[assignment]

NAME = "audio_codecs"
DESCRIPTION = "μ-law 8 kHz ⇄ PCM16 24 kHz per 20 ms frame: our streaming converters vs audioop ratecv + ulaw"

FRAME_8K = 160  # samples (and μ-law bytes) in 20 ms at 8 kHz
FRAME_24K = 480


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--audio-codecs-frames",
        type=int,
        default=3000,
        help="audio_codecs: consecutive 20 ms frames per timed run (3000 = 60 s of audio)",
    )
    parser.add_argument("--audio-codecs-repeats", type=int, default=5, help="audio_codecs: timed runs (5)")


Converter = Callable[[bytes], bytes]


class _AudioopInbound:
    def __init__(self) -> None:
        self.state: object = None

    def __call__(self, frame: bytes) -> bytes:
        pcm = audioop.ulaw2lin(frame, 2)
        out, self.state = audioop.ratecv(pcm, 2, 1, 8000, 24000, self.state)
        return out


class _AudioopOutbound:
    def __init__(self) -> None:
        self.state: object = None

    def __call__(self, frame: bytes) -> bytes:
        pcm, self.state = audioop.ratecv(frame, 2, 1, 24000, 8000, self.state)
        return audioop.lin2ulaw(pcm, 2)


def _speechlike(seconds: float, rate: int, seed: int = 1) -> np.ndarray:
    """Noise shaped roughly like speech (energy falling above ~1 kHz), at a normal talking level."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, int(seconds * rate))
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(len(noise), 1 / rate)
    spectrum /= 1 + (freqs / 1000) ** 2
    shaped = np.fft.irfft(spectrum, len(noise))
    return np.round(shaped / np.abs(shaped).max() * 12_000).astype(np.int16)


def _frames(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data) - size + 1, size)]


def _time_per_frame(make: Callable[[], Converter], frames: list[bytes], repeats: int) -> float:
    """Median seconds per frame over `repeats` runs, each on a fresh converter (one warm-up run first)."""
    runs = []
    for attempt in range(repeats + 1):
        convert = make()
        started = time.perf_counter()
        for frame in frames:
            convert(frame)
        elapsed = time.perf_counter() - started
        if attempt:
            runs.append(elapsed / len(frames))
    return statistics.median(runs)


def _db(ratio: float) -> float | str:
    return "-inf (all zero)" if ratio == 0 else round(float(20 * np.log10(ratio)), 1)


def _through(convert: Converter, data: bytes, size: int) -> bytes:
    return b"".join(convert(frame) for frame in _frames(data, size))


def _inbound_quality(make: Callable[[], Converter], delay: int) -> tuple[float | str, float | str]:
    """(SNR of a 1 kHz tone against the ideal 24 kHz sine, worst image above 4.5 kHz relative to the tone)."""
    t8 = np.arange(8000) / 8000
    ulaw = ulaw_encode(np.round(10_000 * np.sin(2 * np.pi * 1000 * t8)).astype(np.int16))
    out = np.frombuffer(_through(make(), ulaw, FRAME_8K), dtype="<i2").astype(np.float64)[delay:]
    ideal = 10_000 * np.sin(2 * np.pi * 1000 * np.arange(len(out)) / 24_000)
    middle = slice(2400, len(out) - 2400)
    snr = np.sqrt(np.mean(ideal[middle] ** 2)) / np.sqrt(np.mean((out[middle] - ideal[middle]) ** 2))
    window = out[middle] * np.hanning(len(out[middle]))
    spectrum = np.abs(np.fft.rfft(window))
    freqs = np.fft.rfftfreq(len(window), 1 / 24_000)
    return _db(snr), _db(spectrum[freqs > 4500].max() / spectrum.max())


def _outbound_quality(make: Callable[[], Converter], delay: int) -> tuple[float | str, float | str]:
    """(SNR of a 1 kHz tone after μ-law, level of a 10 kHz tone's residue relative to its input level)."""
    t24 = np.arange(24_000) / 24_000
    low = np.round(10_000 * np.sin(2 * np.pi * 1000 * t24)).astype(np.int16).tobytes()
    ulaw = _through(make(), low, FRAME_24K * 2)
    out = np.frombuffer(audioop.ulaw2lin(ulaw, 2), dtype="<i2").astype(np.float64)[delay:]
    ideal = 10_000 * np.sin(2 * np.pi * 1000 * np.arange(len(out)) / 8000)
    middle = slice(800, len(out) - 800)
    snr = np.sqrt(np.mean(ideal[middle] ** 2)) / np.sqrt(np.mean((out[middle] - ideal[middle]) ** 2))
    high = np.round(10_000 * np.sin(2 * np.pi * 10_000 * t24)).astype(np.int16).tobytes()
    residue = np.frombuffer(audioop.ulaw2lin(_through(make(), high, FRAME_24K * 2), 2), dtype="<i2")[800:-800]
    leak = np.sqrt(np.mean(residue.astype(np.float64) ** 2)) / (10_000 / np.sqrt(2))
    return _db(snr), _db(leak)


def _peer_delay(rate_in: int, rate_out: int) -> int:
    """audioop.ratecv's output lag in output samples, found by cross-correlating a click (it is not documented)."""
    click = np.zeros(rate_in // 10, dtype=np.int16)
    click[len(click) // 2] = 20_000
    out, _ = audioop.ratecv(click.tobytes(), 2, 1, rate_in, rate_out, None)
    peak = int(np.argmax(np.frombuffer(out, dtype="<i2")))
    return max(peak - (len(click) // 2) * rate_out // rate_in, 0)


def run(args: argparse.Namespace) -> dict[str, object]:
    if audioop is None:
        raise RuntimeError("the peer needs audioop: Python <= 3.12, or `pip install audioop-lts`")
    count = args.audio_codecs_frames
    repeats = args.audio_codecs_repeats
    speech8 = _speechlike(count * 0.02, 8000)
    inbound_frames = _frames(ulaw_encode(speech8), FRAME_8K)
    outbound_frames = _frames(_speechlike(count * 0.02, 24_000, seed=2).tobytes(), FRAME_24K * 2)

    cases: list[tuple[str, str, Callable[[], Converter], list[bytes], tuple[float | str, float | str]]] = [
        (
            "ours: Ulaw8kToPcm24k",
            "inbound μ-law 8k → PCM 24k",
            lambda: Ulaw8kToPcm24k().process,
            inbound_frames,
            _inbound_quality(lambda: Ulaw8kToPcm24k().process, DELAY_24K),
        ),
        (
            "peer: audioop ulaw2lin + ratecv",
            "inbound μ-law 8k → PCM 24k",
            _AudioopInbound,
            inbound_frames,
            _inbound_quality(_AudioopInbound, _peer_delay(8000, 24_000)),
        ),
        (
            "ours: Pcm24kToUlaw8k",
            "outbound PCM 24k → μ-law 8k",
            lambda: Pcm24kToUlaw8k().process,
            outbound_frames,
            _outbound_quality(lambda: Pcm24kToUlaw8k().process, DELAY_8K),
        ),
        (
            "peer: audioop ratecv + lin2ulaw",
            "outbound PCM 24k → μ-law 8k",
            _AudioopOutbound,
            outbound_frames,
            _outbound_quality(_AudioopOutbound, _peer_delay(24_000, 8000)),
        ),
    ]
    rows = []
    for subject, path, make, frames, (snr, unwanted) in cases:
        per_frame = _time_per_frame(make, frames, repeats)
        rows.append(
            {
                "converter": subject,
                "path": path,
                "µs / 20 ms frame": round(per_frame * 1e6, 1),
                "budget (%)": round(per_frame / 0.02 * 100, 3),
                "frames/s (1 core)": round(1 / per_frame),
                "1 kHz SNR (dB)": snr,
                "unwanted (dB)": unwanted,
            }
        )
    notes = (
        f"{count} frames × {repeats} runs (median). `unwanted`: inbound = strongest image above 4.5 kHz of a "
        "1 kHz tone (relative to the tone); outbound = residue of a 10 kHz tone at 24 kHz after conversion "
        "(relative to its input level; it would alias to 2 kHz). Our filter delays audio by "
        f"{DELAY_24K} samples at 24 kHz ({DELAY_24K / 24:.0f} ms) each way; quality is measured after removing "
        "each converter's own delay."
    )
    return {"rows": rows, "notes": notes}
