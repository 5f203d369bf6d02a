"""Deepgram live transcription for FakeDeepgram: `GET /v1/listen` upgraded to a WebSocket (Deepgram's v1 protocol).

Wire protocol, as Deepgram speaks it:

* Upgrade: `Authorization: Token <key>` or `Bearer <key>` (or `Sec-WebSocket-Protocol: token, <key>`); a wrong key is
  an HTTP 401 and bad query parameters an HTTP 400, both with `{"err_code","err_msg","request_id"}`, a `dg-error`
  header holding `err_msg` and a `dg-request-id` header (also sent on the 101).
* Client -> server: binary frames of audio; text frames `{"type":"KeepAlive"}`, `{"type":"Finalize"}`,
  `{"type":"CloseStream"}` (an empty binary frame is the old spelling of CloseStream). Other text gets an
  `{"type":"Error","variant":"SchemaError",...}` message and the stream stays open.
* Server -> client: `Results` (interim and final), `SpeechStarted` (vad_events=true), `UtteranceEnd`
  (utterance_end_ms set), and `Metadata` right before the normal 1000 close that follows CloseStream.
* No audio and no text message for `fake.idle_timeout_s` (10 s, as Deepgram) closes with 1011 and the NET-0001 text.

How the fake hears (the transcript rule, deterministic and content-addressed):

1. Audio is decoded to mono PCM (`linear16`, `linear32`, `mulaw`, `alaw`; without `encoding`, a streamed WAV header
   is read). Other encodings (opus, flac, ...) are accepted and counted but yield no words.
2. The PCM goes through a two-pole 1 kHz low-pass (so the sample rate hardly matters) and is cut into 10 ms frames
   on a grid that starts at the connection's first audio byte (so chunk boundaries never matter); a frame whose
   RMS level is at or above -48 dBFS is voiced.
3. A speech span starts at a voiced frame, is confirmed once it holds 3 voiced frames (SpeechStarted), and closes
   after 120 ms without a voiced frame; the span covers first to last voiced frame. Span times are relative to
   the connection's start. espeak-ng's pauses at commas (~150 ms) and `-g 20` word gaps split spans; the gaps
   inside its words and sentences (<= 90 ms) do not.
4. A closed span's words come from registered audio: `register_live_words(audio, text)` runs the same
   segmentation on `audio` and shares `text`'s words among its spans (phrase by phrase when the text's
   punctuation-separated phrases are as many as the spans, one word per span when the counts match, else by
   letter counts). A streamed span takes the words of the registered span whose level envelope is nearest
   (duration within 15 % or 30 ms, frame levels within 4.5 dB on average at the best alignment), the successor
   of the previously matched span winning when it is within tolerance. So replaying the same audio on a new
   connection yields the same words, whatever the chunking, the frame alignment or (roughly) the sample rate.
   A span matching nothing is `word<duration in ms>`.
5. Results: with interim_results=true an interim every 200 ms of audio inside a span (words so far plus a guess for
   the open span from its prefix); a final when a span closes and the silence reaches `endpointing` ms
   (default 10, so right at the close; `speech_final=true`); with a longer `endpointing`, a span followed by
   speech before the endpoint is finalized with `speech_final=false` when that speech starts; with
   `endpointing=false` every span is finalized at its close with `speech_final=false`. `UtteranceEnd` follows once
   `utterance_end_ms` of audio has passed after the last word's end. `Finalize` closes the open span and sends
   everything pending as one final with `from_finalize=true` (an empty one if nothing is pending); `CloseStream`
   does the same as a normal final (only if words are pending), then `Metadata`, then closes with 1000. All times
   are audio time, never wall time.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import json
import math
import operator
import re
import struct
import sys
import threading
import time
import uuid
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from multidict import MultiMapping

# ----- tunables (module constants; documented in fakes/README.md) --------------------------------------------

FRAME_S = 0.010
LOWPASS_HZ = 1000.0
SPEECH_DBFS = -48.0
FLOOR_DBFS = -70.0
MIN_SPEECH_FRAMES = 3
SPAN_GAP_FRAMES = 12
INTERIM_FRAMES = 20
DEFAULT_ENDPOINTING_MS = 10
MATCH_TOLERANCE_DB = 4.5
DEFAULT_IDLE_TIMEOUT_S = 10.0

NET_0001 = (
    "Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001"
)
LIVE_ENCODINGS = (
    "linear16",
    "linear32",
    "flac",
    "alaw",
    "mulaw",
    "amr-nb",
    "amr-wb",
    "opus",
    "ogg-opus",
    "speex",
    "g729",
)
_SAMPLE_BYTES = {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}
_BOOL_PARAMS = (
    "interim_results",
    "punctuate",
    "smart_format",
    "diarize",
    "vad_events",
    "multichannel",
    "numerals",
    "profanity_filter",
    "filler_words",
    "dictation",
    "detect_entities",
    "mip_opt_out",
    "no_delay",
)
_AUTH = re.compile(r"^\s*(Token|Bearer)\s+(\S+)\s*$", re.I)
_PHRASE_END = re.compile(r"[,.;:!?]+[\"')\]]*$")


# ----- decoding ------------------------------------------------------------------------------------------------


def _g711_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """G.711 mu-law and A-law byte -> 16-bit sample tables."""
    ulaw, alaw = [], []
    for byte in range(256):
        u = ~byte & 0xFF
        magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 7)) - 0x84
        ulaw.append(-magnitude if u & 0x80 else magnitude)
        a = byte ^ 0x55
        exponent = (a >> 4) & 7
        magnitude = ((a & 0x0F) << 4) + 8 if exponent == 0 else (((a & 0x0F) << 4) + 0x108) << (exponent - 1)
        alaw.append(magnitude if a & 0x80 else -magnitude)
    return tuple(ulaw), tuple(alaw)


_ULAW, _ALAW = _g711_tables()


@dataclass(frozen=True)
class PcmFormat:
    """A raw sample layout the fake can decode."""

    encoding: str
    sample_rate: int
    channels: int = 1

    @property
    def block(self) -> int:
        """Bytes per sample frame (all channels)."""
        return _SAMPLE_BYTES[self.encoding] * self.channels


def _decode(data: bytes, fmt: PcmFormat) -> list[int]:
    """Whole sample frames of `data` -> mono samples on a 16-bit scale (channels averaged)."""
    if fmt.encoding == "linear16":
        wide = array("h")
        wide.frombytes(data)
        if sys.byteorder == "big":
            wide.byteswap()
        samples = list(wide)
    elif fmt.encoding == "linear32":
        wide = array("i")
        wide.frombytes(data)
        if sys.byteorder == "big":
            wide.byteswap()
        samples = [value >> 16 for value in wide]
    elif fmt.encoding == "mulaw":
        samples = [_ULAW[b] for b in data]
    else:
        samples = [_ALAW[b] for b in data]
    channels = fmt.channels
    if channels == 1:
        return samples
    return [sum(samples[i : i + channels]) // channels for i in range(0, len(samples), channels)]


def _parse_wav_header(data: bytes) -> tuple[PcmFormat | None, int] | None:
    """(format or None if undecodable, offset of the sample data) of a WAV prefix; None while incomplete.

    Raises ValueError when `data` is not a RIFF/WAVE stream at all.
    """
    if len(data) < 12:
        if not (b"RIFF".startswith(data[:4]) and (len(data) < 8 or b"WAVE".startswith(data[8:12]))):
            raise ValueError("not a WAV stream")
        return None
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    offset, fmt = 12, None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        body = offset + 8
        if chunk_id == b"data":
            return fmt, body
        if body + size > len(data):
            return None
        if chunk_id == b"fmt " and size >= 16:
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", data[body : body + 16])
            if tag == 0xFFFE and size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the tag
                (tag,) = struct.unpack("<H", data[body + 24 : body + 26])
            encoding = {(1, 16): "linear16", (1, 32): "linear32", (6, 8): "alaw", (7, 8): "mulaw"}.get((tag, bits))
            fmt = PcmFormat(encoding, rate, channels) if encoding and rate and channels else None
        offset = body + size + (size & 1)
    return None


class _Decoder:
    """Audio bytes in arbitrary chunks -> mono samples. `fmt=None` means containerized: a WAV header is expected."""

    def __init__(self, fmt: PcmFormat | None) -> None:
        self.fmt = fmt
        self.undecodable = False
        self.samples = 0
        self._pending = b""

    @property
    def rate(self) -> int:
        return self.fmt.sample_rate if self.fmt else 0

    def feed(self, data: bytes) -> list[int]:
        if self.undecodable:
            return []
        self._pending += data
        if self.fmt is None:
            try:
                parsed = _parse_wav_header(self._pending)
            except ValueError:
                parsed = (None, 0)
            if parsed is None:
                if len(self._pending) > 1 << 16:
                    self.undecodable = True
                return []
            fmt, offset = parsed
            if fmt is None:
                self.undecodable = True
                self._pending = b""
                return []
            self.fmt, self._pending = fmt, self._pending[offset:]
        usable = len(self._pending) - len(self._pending) % self.fmt.block
        chunk, self._pending = self._pending[:usable], self._pending[usable:]
        samples = _decode(chunk, self.fmt)
        self.samples += len(samples)
        return samples


def decode_audio(audio: bytes, fmt: PcmFormat) -> tuple[list[int], int]:
    """(mono samples, sample rate) of a whole WAV file (any rate; PCM 16/32 bit, mu-law, A-law) or of raw `fmt`."""
    decoder = _Decoder(None if audio[:4] == b"RIFF" else fmt)
    samples = decoder.feed(audio)
    if decoder.undecodable or decoder.fmt is None:
        raise ValueError("cannot decode this audio: give linear16/linear32/mulaw/alaw PCM or such a WAV file")
    return samples, decoder.rate


# ----- segmentation ----------------------------------------------------------------------------------------------


def _dbfs(samples: list[float]) -> float:
    if not samples:
        return FLOOR_DBFS
    power = sum(map(operator.mul, samples, samples)) / len(samples) / (32768.0 * 32768.0)
    return max(FLOOR_DBFS, 10 * math.log10(power)) if power > 1e-12 else FLOOR_DBFS


class _FrameMeter:
    """Mono samples -> one dBFS level per 10 ms frame; frame i spans samples [i*rate/100, (i+1)*rate/100).

    Levels are taken after a two-pole 1 kHz low-pass, so they hardly depend on the sample rate (8 kHz mu-law and
    22.05 kHz WAV of the same speech give the same spans): fricatives barely count, voiced sounds do.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.frames = 0
        self._buffer: list[float] = []
        self._base = 0  # absolute index of _buffer[0]
        self._alpha = 1.0 - math.exp(-2.0 * math.pi * LOWPASS_HZ / rate)
        self._y1 = self._y2 = 0.0

    def _lowpass(self, samples: list[int]) -> list[float]:
        alpha, y1, y2 = self._alpha, self._y1, self._y2
        out = []
        for x in samples:
            y1 += alpha * (x - y1)
            y2 += alpha * (y1 - y2)
            out.append(y2)
        self._y1, self._y2 = y1, y2
        return out

    def feed(self, samples: list[int]) -> list[float]:
        self._buffer.extend(self._lowpass(samples))
        levels = []
        while True:
            start = self.frames * self.rate // 100 - self._base
            end = (self.frames + 1) * self.rate // 100 - self._base
            if end > len(self._buffer):
                break
            levels.append(_dbfs(self._buffer[start:end]))
            self.frames += 1
        drop = self.frames * self.rate // 100 - self._base
        del self._buffer[:drop]
        self._base += drop
        return levels


@dataclass(frozen=True)
class Span:
    """A stretch of speech: frame index of its first voiced frame and the level of every frame to its last one."""

    first: int
    levels: tuple[float, ...]

    @property
    def start(self) -> float:
        return round(self.first * FRAME_S, 3)

    @property
    def end(self) -> float:
        return round((self.first + len(self.levels)) * FRAME_S, 3)

    @property
    def duration_ms(self) -> int:
        return len(self.levels) * 10


class _Segmenter:
    """Frame levels -> speech spans, exactly as described in the module docstring."""

    def __init__(self) -> None:
        self.frame = 0
        self._start: int | None = None
        self._levels: list[float] = []
        self._voiced = 0
        self._last_voiced = -1
        self.confirmed = False

    @property
    def in_span(self) -> bool:
        """A confirmed span is open."""
        return self._start is not None and self.confirmed

    @property
    def silence_frames(self) -> int:
        return self.frame - 1 - self._last_voiced

    def push(self, level: float) -> tuple[Span | None, Span | None]:
        """Feed one frame; returns (span just confirmed, span just closed)."""
        index = self.frame
        self.frame += 1
        started = closed = None
        if level >= SPEECH_DBFS:
            if self._start is None:
                self._start, self._levels, self._voiced, self.confirmed = index, [], 0, False
            self._levels.append(level)
            self._voiced += 1
            self._last_voiced = index
            if not self.confirmed and self._voiced >= MIN_SPEECH_FRAMES:
                self.confirmed = True
                started = self.open_span()
        elif self._start is not None:
            self._levels.append(level)
            if index - self._last_voiced >= SPAN_GAP_FRAMES:
                closed = self.flush()
        return started, closed

    def open_span(self) -> Span | None:
        """The confirmed span still open, up to its last voiced frame."""
        if self._start is None or not self.confirmed:
            return None
        return Span(self._start, tuple(self._levels[: self._last_voiced - self._start + 1]))

    def flush(self) -> Span | None:
        """Close whatever is open now; an unconfirmed blip is dropped."""
        span = self.open_span()
        self._start, self._levels, self._voiced, self.confirmed = None, [], 0, False
        return span


def segment(samples: list[int], rate: int) -> list[Span]:
    """Every speech span of a whole recording (the last one closed at the end)."""
    segmenter = _Segmenter()
    spans = []
    for level in _FrameMeter(rate).feed(samples):
        _started, closed = segmenter.push(level)
        if closed:
            spans.append(closed)
    last = segmenter.flush()
    if last:
        spans.append(last)
    return spans


# ----- registered words and matching -----------------------------------------------------------------------------


def _slack(frames: int) -> float:
    return max(3.0, 0.15 * frames)


def _aligned_distance(a: tuple[float, ...], b: tuple[float, ...], *, prefix: bool) -> float:
    """Frame-by-frame level difference (dB) of two spans at their best alignment within +-2 frames.

    Levels are compared after removing each side's mean (a quarter of the mean difference is added back), so
    a small gain change or codec does not matter; frames without a partner cost their height above the speech
    threshold, so a weak edge frame that one alignment catches and another misses costs little. With `prefix`,
    `b`'s frames beyond `a` are free (a growing span against a whole registered one).
    """
    best = math.inf
    for offset in range(-2, 3):
        pairs = [(x, b[i + offset]) for i, x in enumerate(a) if 0 <= i + offset < len(b)]
        if len(pairs) < max(1, min(len(a), len(b)) // 2):
            continue
        unmatched = [x for i, x in enumerate(a) if not 0 <= i + offset < len(b)]
        if not prefix:
            unmatched += [y for j, y in enumerate(b) if not 0 <= j - offset < len(a)]
        mean_a = sum(x for x, _ in pairs) / len(pairs)
        mean_b = sum(y for _, y in pairs) / len(pairs)
        shape = sum(abs((x - mean_a) - (y - mean_b)) for x, y in pairs)
        edges = sum(max(0.0, v - SPEECH_DBFS) + 1.0 for v in unmatched)
        best = min(best, (shape + edges) / (len(pairs) + len(unmatched)) + 0.25 * abs(mean_a - mean_b))
    return best


def span_distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """How unlike two spans are (dB); inf when their durations differ by more than 15 % or 30 ms."""
    if abs(len(a) - len(b)) > _slack(max(len(a), len(b))):
        return math.inf
    return _aligned_distance(a, b, prefix=False)


def prefix_distance(partial: tuple[float, ...], full: tuple[float, ...]) -> float:
    """How unlike the start of a still-growing span is to the start of a registered one."""
    if len(partial) > len(full) + _slack(len(full)):
        return math.inf
    return _aligned_distance(partial, full, prefix=True)


@dataclass(frozen=True)
class RegisteredSpan:
    key: tuple[int, int]  # (registration number, span index)
    levels: tuple[float, ...]
    tokens: tuple[str, ...]


def _letters(token: str) -> int:
    return max(1, sum(ch.isalnum() for ch in token))


def assign_words(spans: list[Span], tokens: list[str]) -> list[tuple[str, ...]]:
    """Share `tokens` among `spans` in order (some spans may get none); rule in the module docstring."""
    if not spans:
        return []
    phrases: list[list[str]] = [[]]
    for token in tokens:
        phrases[-1].append(token)
        if _PHRASE_END.search(token):
            phrases.append([])
    phrases = [p for p in phrases if p]
    if len(phrases) == len(spans):
        return [tuple(p) for p in phrases]
    if len(tokens) == len(spans):
        return [(t,) for t in tokens]
    # Least squares between each span's length and its words' expected length (letters, scaled), by DP.
    frames = [len(s.levels) for s in spans]
    letters = [0]
    for token in tokens:
        letters.append(letters[-1] + _letters(token) + 1)
    scale = sum(frames) / letters[-1] if letters[-1] else 0.0
    n, m = len(spans), len(tokens)
    inf = math.inf
    best = [[inf] * (m + 1) for _ in range(n + 1)]
    cut = [[0] * (m + 1) for _ in range(n + 1)]
    best[0][0] = 0.0
    for s in range(1, n + 1):
        for t in range(m + 1):
            for u in range(t + 1):
                if best[s - 1][u] == inf:
                    continue
                expected = (letters[t] - letters[u]) * scale
                cost = best[s - 1][u] + (frames[s - 1] - expected) ** 2 * (1 if t > u else 2)
                if cost < best[s][t]:
                    best[s][t], cut[s][t] = cost, u
    groups: list[tuple[str, ...]] = []
    t = m
    for s in range(n, 0, -1):
        u = cut[s][t]
        groups.append(tuple(tokens[u:t]))
        t = u
    return groups[::-1]


class LiveWordRegistry:
    """Words registered for speech spans; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[RegisteredSpan] = []
        self._registrations = 0

    def register(self, spans: list[Span], text: str) -> list[tuple[str, ...]]:
        groups = assign_words(spans, text.split())
        with self._lock:
            number = self._registrations
            self._registrations += 1
            self._spans.extend(
                RegisteredSpan((number, i), span.levels, group)
                for i, (span, group) in enumerate(zip(spans, groups, strict=True))
            )
        return groups

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def match(
        self, levels: tuple[float, ...], expected: tuple[int, int] | None, *, prefix: bool = False
    ) -> RegisteredSpan | None:
        """The registered span nearest to `levels`, the `expected` successor first; newest registration on ties."""
        with self._lock:
            candidates = list(self._spans)
        measure = prefix_distance if prefix else span_distance
        best, best_distance = None, math.inf
        for candidate in reversed(candidates):
            distance = measure(levels, candidate.levels)
            if distance > MATCH_TOLERANCE_DB:
                continue
            if candidate.key == expected:
                return candidate
            if distance < best_distance:
                best, best_distance = candidate, distance
        return best


# ----- options --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveOptions:
    model: str
    language: str
    encoding: str | None
    sample_rate: int | None
    channels: int
    interim_results: bool
    punctuate: bool
    diarize: bool
    vad_events: bool
    utterance_end_ms: int | None
    endpointing_ms: int | None  # None: endpointing=false

    @property
    def pcm(self) -> PcmFormat | None:
        if self.encoding in _SAMPLE_BYTES and self.sample_rate:
            return PcmFormat(self.encoding, self.sample_rate, self.channels)
        return None


def _positive_int(query: MultiMapping[str], name: str) -> int | None:
    if name not in query:
        return None
    value = query[name]
    if not value.isdigit() or int(value) <= 0:
        raise ValueError(f"Bad Request: Invalid value for `{name}`: {value!r}. Expected a positive integer.")
    return int(value)


def parse_live_options(query: MultiMapping[str], models: Iterable[str], default_model: str) -> LiveOptions:
    """The stream's options; ValueError(err_msg) for what Deepgram rejects at the upgrade."""
    model = query.get("model", default_model)
    if model not in models:
        raise ValueError(
            "No such model/language/tier combination found. Use the /v1/models endpoint to see available models."
        )
    for name in _BOOL_PARAMS:
        if name in query and query[name].lower() not in ("true", "false"):
            raise ValueError(f"Bad Request: Invalid value for `{name}`: {query[name]!r}. Expected true or false.")
    encoding = query.get("encoding")
    if encoding is not None and encoding not in LIVE_ENCODINGS:
        raise ValueError(
            f"Bad Request: Invalid value for `encoding`: {encoding!r}. Expected one of {', '.join(LIVE_ENCODINGS)}."
        )
    sample_rate = _positive_int(query, "sample_rate")
    if encoding is not None and sample_rate is None:
        raise ValueError("Bad Request: sample_rate is required when encoding is specified for raw audio.")
    channels = _positive_int(query, "channels") or 1
    utterance_end_ms = _positive_int(query, "utterance_end_ms")
    raw_endpointing = query.get("endpointing", "true").lower()
    if raw_endpointing == "false":
        endpointing: int | None = None
    elif raw_endpointing == "true":
        endpointing = DEFAULT_ENDPOINTING_MS
    elif raw_endpointing.isdigit():
        endpointing = int(raw_endpointing)
    else:
        raise ValueError(
            f"Bad Request: Invalid value for `endpointing`: {raw_endpointing!r}. "
            "Expected false or a number of milliseconds."
        )
    language = query.get("language", "en")
    if not language.strip():
        raise ValueError("Bad Request: Invalid value for `language`.")

    def flag(name: str) -> bool:
        return query.get(name, "false").lower() == "true"

    return LiveOptions(
        model=model,
        language=language,
        encoding=encoding,
        sample_rate=sample_rate,
        channels=channels,
        interim_results=flag("interim_results"),
        punctuate=flag("punctuate") or flag("smart_format"),
        diarize=flag("diarize"),
        vad_events=flag("vad_events"),
        utterance_end_ms=utterance_end_ms,
        endpointing_ms=endpointing,
    )


# ----- records ----------------------------------------------------------------------------------------------------


@dataclass
class LiveConnection:
    """What happened on one live connection (or one refused upgrade), for assertions. Snapshots are copies."""

    index: int
    request_id: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int = 101
    bytes_received: int = 0
    audio_messages: int = 0
    audio_seconds: float = 0.0
    control: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None
    closed_by: str | None = None  # "server", "client", "drop" (server dropped TCP), "refused" (no upgrade)
    opened_at: float = field(default_factory=time.time)
    closed_at: float | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None

    @property
    def dropped(self) -> bool:
        return self.closed_by == "drop"

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    @property
    def control_types(self) -> list[str]:
        return [str(message.get("type")) for message in self.control]

    def messages(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Messages sent to the client, optionally of one `type`."""
        return [m for m in self.sent if type_ is None or m.get("type") == type_]

    def results(self, *, final: bool | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages("Results") if final is None or m["is_final"] == final]

    @property
    def transcript(self) -> str:
        """The final transcripts joined: what a client keeping only finals would have."""
        parts = [m["channel"]["alternatives"][0]["transcript"] for m in self.results(final=True)]
        return " ".join(p for p in parts if p)


@dataclass
class _LiveFault:
    action: str  # "close" or "drop"
    code: int = 1011
    reason: str = ""
    after_bytes: int | None = None
    after_seconds: float | None = None
    armed_at: float | None = None
    command: bool = False  # from live_close_all/live_drop_all: for the streams open at that moment only

    def due(self, received: int, now: float) -> bool:
        if self.after_bytes is None and self.after_seconds is None:
            return True
        if self.after_bytes is not None and received >= self.after_bytes:
            return True
        return (
            self.after_seconds is not None and self.armed_at is not None and now - self.armed_at >= self.after_seconds
        )


_WAKE = object()
_EOF = object()


def _now_iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _norm(token: str) -> str:
    return re.sub(r"[^\w'-]", "", token).lower() or token.lower()


# ----- one connection --------------------------------------------------------------------------------------------


class _Stream:
    """Server side of one accepted live connection; runs in the fake's loop."""

    def __init__(
        self,
        fake: DeepgramLiveMixin,
        request: web.Request,
        ws: web.WebSocketResponse,
        record: LiveConnection,
        options: LiveOptions,
    ) -> None:
        self.fake = fake
        self.request = request
        self.ws = ws
        self.record = record
        self.options = options
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.done = False
        self.fault: _LiveFault | None = None
        self.assigned: list[_LiveFault] = []  # handed over by other threads, under fake._lock
        self.decoder = _Decoder(options.pcm)
        self.meter: _FrameMeter | None = None
        self.segmenter = _Segmenter()
        self.sha = hashlib.sha256()
        self.last_activity = self.loop.time()
        self.window_start = 0.0
        self.pending: list[dict[str, Any]] = []
        self.pending_spans = 0
        self.last_word_end: float | None = None
        self.utterance_open = False
        self.next_interim = 0
        self.expected: tuple[int, int] | None = None
        self.client_close: tuple[int, str] | None = None
        self.reader: asyncio.Task[None] | None = None
        name, version, arch, model_uuid = fake._model_info(options.model)
        self.model_uuid = model_uuid
        self.model_info = {"name": name, "version": version, "arch": arch}

    # -- plumbing --

    def wake(self) -> None:
        """Called in this loop (via call_soon_threadsafe) when a fault was handed to this stream."""
        if not self.done:
            self.queue.put_nowait(_WAKE)

    async def _read(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message.type == WSMsgType.CLOSE:
                    self.client_close = (message.data, message.extra)
                if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    break
                self.queue.put_nowait(message)
        except Exception:  # noqa: BLE001 - a broken socket just ends the stream
            pass
        finally:
            self.queue.put_nowait(_EOF)

    async def run(self) -> None:
        self.reader = reader = asyncio.create_task(self._read())
        try:
            await self._check_fault()
            while not self.done:
                remaining = self.fake.idle_timeout_s - (self.loop.time() - self.last_activity)
                if remaining <= 0:
                    await self._close(1011, NET_0001)
                    break
                try:
                    async with asyncio.timeout(remaining):
                        item = await self.queue.get()
                except TimeoutError:
                    continue
                if item is _EOF:
                    break
                if item is not _WAKE:
                    self.last_activity = self.loop.time()
                    await self._handle(item)
                if not self.done:
                    await self._check_fault()
        finally:
            # aiohttp cancels this handler as soon as the client's TCP connection goes: no await before the record.
            self.done = True
            reader.cancel()
            self.fake._live_finished(self)

    async def _send(self, message: dict[str, Any]) -> None:
        if self.done:
            return
        with self.fake._lock:
            self.record.sent.append(message)
        try:
            await self.ws.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError):
            self.done = True

    async def _close(self, code: int, reason: str) -> None:
        if self.done:
            return
        self.done = True
        with self.fake._lock:
            self.record.close_code, self.record.close_reason, self.record.closed_by = code, reason, "server"
        # With a receive() pending, aiohttp's close() drops TCP without waiting for the client's close frame, and
        # audio still in flight then draws a RST that can swallow our close frame. Without one it does the whole
        # handshake (send close, read until the client's close, then close TCP), as Deepgram does.
        if self.reader is not None and not self.reader.done():
            self.reader.cancel()
            await asyncio.wait([self.reader])
        try:
            await self.ws.close(code=code, message=reason.encode()[:123])
        except (ConnectionError, RuntimeError):
            pass

    def _drop(self) -> None:
        self.done = True
        with self.fake._lock:
            self.record.closed_by = "drop"
            self.record.close_code = 1006
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def _check_fault(self) -> None:
        with self.fake._lock:
            if self.fault is None and self.assigned:
                self.fault = self.assigned.pop(0)
            elif self.assigned and self.assigned[0].command:
                self.fault = self.assigned.pop(0)  # close_all/drop_all preempt an armed, not yet due fault
        fault = self.fault
        if fault is None:
            return
        if fault.armed_at is None:
            fault.armed_at = self.loop.time()
            if fault.after_seconds is not None:
                self.loop.call_later(fault.after_seconds, self.wake)
        if not fault.due(self.record.bytes_received, self.loop.time()):
            return
        if fault.action == "drop":
            self._drop()
        else:
            await self._close(fault.code, fault.reason)

    # -- protocol --

    async def _handle(self, message: Any) -> None:
        if message.type == WSMsgType.BINARY:
            data: bytes = message.data
            with self.fake._lock:
                self.record.bytes_received += len(data)
                self.record.audio_messages += 1
            if not data:
                await self._close_stream()
                return
            self.sha.update(data)
            await self._audio(data)
            return
        text: str = message.data
        try:
            control = json.loads(text)
            kind = control.get("type") if isinstance(control, dict) else None
        except ValueError:
            control, kind = {"raw": text}, None
        with self.fake._lock:
            self.record.control.append(control if isinstance(control, dict) else {"raw": text})
        if kind == "KeepAlive":
            return
        if kind == "Finalize":
            await self._flush(from_finalize=True)
        elif kind == "CloseStream":
            await self._close_stream()
        elif kind == "Configure":
            await self._send(
                {
                    "type": "ConfigureSuccess",
                    "request_id": self.record.request_id,
                    **({"keyterms": control["keyterms"]} if control.get("keyterms") is not None else {}),
                }
            )
        else:
            await self._send(
                {
                    "type": "Error",
                    "variant": "SchemaError",
                    "description": "Could not deserialize the client message.",
                    "message": text,
                }
            )

    @property
    def audio_time(self) -> float:
        rate = self.decoder.rate
        return self.decoder.samples / rate if rate else 0.0

    async def _audio(self, data: bytes) -> None:
        samples = self.decoder.feed(data)
        with self.fake._lock:
            self.record.audio_seconds = round(self.audio_time, 6)
        if not samples:
            return
        if self.meter is None:
            self.meter = _FrameMeter(self.decoder.rate)
        for level in self.meter.feed(samples):
            await self._frame(level)
            if self.done:
                return

    async def _frame(self, level: float) -> None:
        started, closed = self.segmenter.push(level)
        options = self.options
        if closed is not None:
            await self._span_closed(closed, emit=True)
        if started is not None:
            if options.vad_events:
                await self._send({"type": "SpeechStarted", "channel": [0], "timestamp": started.start})
            if self.pending_spans:
                await self._final(end=started.start, speech_final=False)
            self.next_interim = started.first + INTERIM_FRAMES
        now = round(self.segmenter.frame * FRAME_S, 3)
        silence_ms = self.segmenter.silence_frames * 10
        if (
            self.pending_spans
            and not self.segmenter.in_span
            and options.endpointing_ms is not None
            and silence_ms >= options.endpointing_ms
        ):
            await self._final(end=now, speech_final=True)
        if options.interim_results and self.segmenter.in_span and self.segmenter.frame >= self.next_interim:
            self.next_interim += INTERIM_FRAMES
            await self._interim(now)
        if (
            options.utterance_end_ms
            and self.utterance_open
            and not self.segmenter.in_span
            and self.last_word_end is not None
            and now - self.last_word_end >= options.utterance_end_ms / 1000
        ):
            if self.pending_spans:
                await self._final(end=now, speech_final=False)
            self.utterance_open = False
            await self._send({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": self.last_word_end})

    def _timed_words(self, tokens: Iterable[str], start: float, end: float, confidence: float) -> list[dict[str, Any]]:
        tokens = list(tokens)
        step = (end - start) / len(tokens) if tokens else 0.0
        words = []
        for i, token in enumerate(tokens):
            word: dict[str, Any] = {
                "word": _norm(token),
                "start": round(start + i * step, 3),
                "end": round(start + (i + 1) * step, 3),
                "confidence": confidence,
            }
            if self.options.punctuate:
                word["punctuated_word"] = token
            if self.options.diarize:
                word["speaker"] = 0
            words.append(word)
        return words

    def _words_for(self, span: Span) -> list[dict[str, Any]]:
        match = self.fake.live_words.match(span.levels, self.expected)
        if match is None:
            self.expected = None
            return self._timed_words([f"word{span.duration_ms}"], span.start, span.end, 0.6)
        self.expected = (match.key[0], match.key[1] + 1)
        return self._timed_words(match.tokens, span.start, span.end, 0.98)

    async def _span_closed(self, span: Span, *, emit: bool) -> None:
        words = self._words_for(span)
        self.pending.extend(words)
        self.pending_spans += 1
        if words:
            self.last_word_end = words[-1]["end"]
            self.utterance_open = True
        if emit and self.options.endpointing_ms is None:
            now = round(self.segmenter.frame * FRAME_S, 3)
            await self._final(end=now, speech_final=False)

    def _results(
        self,
        start: float,
        end: float,
        words: list[dict[str, Any]],
        *,
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
    ) -> dict[str, Any]:
        if self.options.punctuate:
            transcript = " ".join(w["punctuated_word"] for w in words)
        else:
            transcript = " ".join(w["word"] for w in words)
        confidence = round(sum(w["confidence"] for w in words) / len(words), 4) if words else 0.0
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(max(0.0, end - start), 3),
            "start": round(start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {"alternatives": [{"transcript": transcript, "confidence": confidence, "words": words}]},
            "metadata": {
                "request_id": self.record.request_id,
                "model_info": self.model_info,
                "model_uuid": self.model_uuid,
            },
            "from_finalize": from_finalize,
        }

    async def _interim(self, now: float) -> None:
        span = self.segmenter.open_span()
        guess: list[dict[str, Any]] = []
        if span is not None:
            match = self.fake.live_words.match(span.levels, self.expected, prefix=True)
            tokens = match.tokens if match else (f"word{span.duration_ms}",)
            guess = self._timed_words(tokens, span.start, span.end, 0.8 if match else 0.5)
        await self._send(
            self._results(
                self.window_start, now, self.pending + guess, is_final=False, speech_final=False, from_finalize=False
            )
        )

    async def _final(self, *, end: float, speech_final: bool, from_finalize: bool = False) -> None:
        words, self.pending, self.pending_spans = self.pending, [], 0
        start, self.window_start = self.window_start, max(self.window_start, end)
        await self._send(
            self._results(
                start, max(start, end), words, is_final=True, speech_final=speech_final, from_finalize=from_finalize
            )
        )

    async def _flush(self, *, from_finalize: bool) -> None:
        span = self.segmenter.flush()
        if span is not None:
            await self._span_closed(span, emit=False)
        end = max(self.audio_time, self.segmenter.frame * FRAME_S)
        if from_finalize or self.pending_spans:
            await self._final(end=end, speech_final=not from_finalize, from_finalize=from_finalize)

    async def _close_stream(self) -> None:
        await self._flush(from_finalize=False)
        channels = self.options.channels if self.record.bytes_received else 0
        await self._send(
            {
                "type": "Metadata",
                "transaction_key": "deprecated",
                "request_id": self.record.request_id,
                "sha256": self.sha.hexdigest(),
                "created": _now_iso(self.record.opened_at),
                "duration": round(self.audio_time, 6),
                "channels": channels,
                "models": [self.model_uuid],
                "model_info": {self.model_uuid: self.model_info},
            }
        )
        await self._close(1000, "")


# ----- the FakeDeepgram side -------------------------------------------------------------------------------------


class DeepgramLiveMixin:
    """Live streaming for FakeDeepgram; expects FakeService's `_lock` and FakeDeepgram's `api_key` and `error()`."""

    api_key: str
    _lock: threading.Lock
    error: Callable[..., web.Response]

    def _init_live(self, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.live_words = LiveWordRegistry()
        self._live_records: list[LiveConnection] = []
        self._live_streams: list[tuple[_Stream, asyncio.AbstractEventLoop]] = []
        self._live_faults: list[_LiveFault] = []

    # ----- test API -----------------------------------------------------------------------------------------------

    def register_live_words(
        self, audio: bytes, text: str, *, encoding: str = "linear16", sample_rate: int = 16_000, channels: int = 1
    ) -> list[tuple[float, float, str]]:
        """Make streamed audio that sounds like `audio` transcribe as `text`; returns the (start, end, words) spans.

        `audio` is a WAV file (any rate; 16/32-bit PCM, mu-law or A-law) or raw samples in `encoding`/`sample_rate`.
        """
        samples, rate = decode_audio(audio, PcmFormat(encoding, sample_rate, channels))
        spans = segment(samples, rate)
        if not spans:
            raise ValueError("no speech found in the registered audio (nothing at or above -48 dBFS)")
        groups = self.live_words.register(spans, text)
        return [(span.start, span.end, " ".join(group)) for span, group in zip(spans, groups, strict=True)]

    def live_spans(
        self, audio: bytes, *, encoding: str = "linear16", sample_rate: int = 16_000, channels: int = 1
    ) -> list[tuple[float, float, str]]:
        """What the fake would hear in `audio` streamed on a fresh connection: (start, end, words) per span."""
        samples, rate = decode_audio(audio, PcmFormat(encoding, sample_rate, channels))
        out, expected = [], None
        for span in segment(samples, rate):
            match = self.live_words.match(span.levels, expected)
            expected = (match.key[0], match.key[1] + 1) if match else None
            out.append((span.start, span.end, " ".join(match.tokens) if match else f"word{span.duration_ms}"))
        return out

    @property
    def live_connections(self) -> list[LiveConnection]:
        """Snapshots of every live connection (and refused upgrade), oldest first."""
        with self._lock:
            return copy.deepcopy(self._live_records)

    def live_connection(self, index: int = -1) -> LiveConnection:
        return self.live_connections[index]

    async def wait_live(
        self, predicate: Callable[[list[LiveConnection]], bool], wait_s: float = 10.0
    ) -> list[LiveConnection]:
        """Poll the records (from any loop) until `predicate(records)` holds; TimeoutError after `wait_s`."""
        deadline = time.monotonic() + wait_s
        while True:
            records = self.live_connections
            if predicate(records):
                return records
            if time.monotonic() >= deadline:
                raise TimeoutError(f"live connections never matched: {records!r}")
            await asyncio.sleep(0.01)

    async def wait_live_closed(self, count: int = 1, wait_s: float = 10.0) -> list[LiveConnection]:
        """Wait until `count` live connections have ended (server-side bookkeeping done); returns the closed ones."""
        records = await self.wait_live(lambda rs: sum(not r.open for r in rs) >= count, wait_s)
        return [r for r in records if not r.open]

    def live_fail_next(
        self,
        code: int = 1011,
        reason: str = "",
        *,
        after_bytes: int | None = None,
        after_seconds: float | None = None,
        count: int = 1,
    ) -> None:
        """Close `count` streams with `code`/`reason`: open ones without a pending fault first, then new ones.

        Fires once the stream has received `after_bytes` audio bytes in total or `after_seconds` after the fault
        reached it, whichever comes first; with neither, at once (right after the upgrade for a new stream).
        """
        self._arm_live([_LiveFault("close", code, reason, after_bytes, after_seconds) for _ in range(count)])

    def live_drop_next(
        self, *, after_bytes: int | None = None, after_seconds: float | None = None, count: int = 1
    ) -> None:
        """Like `live_fail_next`, but the TCP connection is cut with no close frame (clients see 1006)."""
        self._arm_live([_LiveFault("drop", 1006, "", after_bytes, after_seconds) for _ in range(count)])

    def live_close_all(self, code: int = 1011, reason: str = "") -> int:
        """Close every open stream now (from any thread); returns how many were open."""
        return self._command_all(lambda: _LiveFault("close", code, reason, command=True))

    def live_drop_all(self) -> int:
        """Cut every open stream's TCP connection now, without a close frame; returns how many were open."""
        return self._command_all(lambda: _LiveFault("drop", 1006, command=True))

    def reset(self) -> None:
        """Forget requests, pending faults and live records (registered words stay)."""
        super().reset()  # type: ignore[misc]
        with self._lock:
            self._live_records.clear()
            self._live_faults.clear()

    # ----- internals ----------------------------------------------------------------------------------------------

    def _arm_live(self, faults: list[_LiveFault]) -> None:
        woken = []
        with self._lock:
            for stream, loop in self._live_streams:
                if not faults:
                    break
                if stream.fault is None and not stream.assigned and not stream.done:
                    stream.assigned.append(faults.pop(0))
                    woken.append((stream, loop))
            self._live_faults.extend(faults)
        for stream, loop in woken:
            loop.call_soon_threadsafe(stream.wake)

    def _command_all(self, make: Callable[[], _LiveFault]) -> int:
        with self._lock:
            targets = [(s, loop) for s, loop in self._live_streams if not s.done]
            for stream, _loop in targets:
                stream.assigned.insert(0, make())
        for stream, loop in targets:
            loop.call_soon_threadsafe(stream.wake)
        return len(targets)

    def _live_finished(self, stream: _Stream) -> None:
        with self._lock:
            record = stream.record
            if record.closed_by is None:
                record.closed_by = "client"
                code, reason = stream.client_close or (stream.ws.close_code, None)
                record.close_code, record.close_reason = code, reason
            record.closed_at = time.time()
            self._live_streams = [(s, loop) for s, loop in self._live_streams if s is not stream]
            # Faults handed over while this stream was already ending go to the next stream instead.
            self._live_faults[:0] = [f for f in stream.assigned if not f.command]
            stream.assigned.clear()

    def _model_info(self, model: str) -> tuple[str, str, str, str]:
        from fakes.deepgram import MODELS  # the REST module imports this one

        name, version, arch = MODELS[model]
        return name, version, arch, str(uuid.uuid5(uuid.NAMESPACE_URL, "deepgram-fake/" + model))

    def _refuse(
        self, record: LiveConnection, status: int, message: str | None = None, code: str | None = None
    ) -> web.Response:
        response = self.error(status, message, code=code)
        body = json.loads(response.body) if isinstance(response.body, bytes) else {}
        response.headers["dg-error"] = str(body.get("err_msg", ""))
        response.headers["dg-request-id"] = str(body.get("request_id", record.request_id))
        with self._lock:
            record.request_id = response.headers["dg-request-id"]
            record.status, record.closed_by, record.closed_at = status, "refused", time.time()
        return response

    # ----- handler ------------------------------------------------------------------------------------------------

    async def live_listen(self, request: web.Request) -> web.StreamResponse:
        """`GET /v1/listen`: the WebSocket upgrade, validated like Deepgram's."""
        from fakes.deepgram import DEFAULT_MODEL, MODELS

        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        with self._lock:
            record = LiveConnection(
                index=len(self._live_records), request_id=str(uuid.uuid4()), query=query, headers=dict(request.headers)
            )
            self._live_records.append(record)
        ws = web.WebSocketResponse(protocols=("token",), max_msg_size=16 * 1024 * 1024)
        if not ws.can_prepare(request).ok:
            return self._refuse(
                record, 400, "Bad Request: this endpoint expects a WebSocket upgrade (POST it for prerecorded audio)."
            )
        key = None
        match = _AUTH.match(request.headers.get("Authorization", ""))
        if match:
            key = match.group(2)
        else:
            protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
            if len(protocols) == 2 and protocols[0].lower() in ("token", "bearer"):
                key = protocols[1]
        if key != self.api_key:
            return self._refuse(record, 401)
        try:
            options = parse_live_options(request.query, MODELS, DEFAULT_MODEL)
        except ValueError as exc:
            return self._refuse(record, 400, str(exc))
        ws.headers["dg-request-id"] = record.request_id
        await ws.prepare(request)
        stream = _Stream(self, request, ws, record, options)
        with self._lock:
            self._live_streams.append((stream, stream.loop))
            if self._live_faults:
                stream.assigned.append(self._live_faults.pop(0))
        await stream.run()
        return ws
