"""What a client may ask for in `start`, validated; and the errors a stream answers with.

    options = parse_start(payload, default_language="en")   # StreamError("unsupported_encoding" | "invalid_options")

Raw encodings (`linear16`, `mulaw`) have a known byte rate, so audio time is exact and dropped upstream
connections can be replayed byte for byte; containerized/compressed ones (`opus`, `webm`) do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..providers.deepgram_live import LiveOptions

ENCODINGS = ("linear16", "mulaw", "opus", "webm")
SAMPLE_BYTES = {"linear16": 2, "mulaw": 1}  # raw encodings: bytes per sample per channel
SAMPLE_RATES = (8_000, 48_000)  # inclusive bounds
MAX_CHANNELS = 8
UTTERANCE_END_MS = 1000  # Deepgram needs interim results for UtteranceEnd
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,3}$")
_BOOLEAN_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class StreamError(Exception):
    """An `error` event: a stable `code`, a human `message` and optional extra fields."""

    def __init__(self, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra or {}

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


@dataclass(frozen=True)
class StreamOptions:
    encoding: str = "linear16"
    sample_rate: int = 16_000
    channels: int = 1
    language: str | None = None
    interim_results: bool = True
    punctuate: bool = True
    diarize: bool = False

    @property
    def raw(self) -> bool:
        """Headerless samples with a fixed byte rate (exact audio time, byte-exact replay)."""
        return self.encoding in SAMPLE_BYTES

    @property
    def block(self) -> int:
        """Bytes of one sample frame (every channel); 1 for compressed audio."""
        return SAMPLE_BYTES.get(self.encoding, 1) * (self.channels if self.raw else 1)

    @property
    def bytes_per_second(self) -> int | None:
        return self.block * self.sample_rate if self.raw else None

    def live_options(self) -> LiveOptions:
        containerized = self.encoding == "webm"  # Deepgram reads the format from the container
        return LiveOptions(
            encoding=None if containerized else self.encoding,
            sample_rate=None if containerized else self.sample_rate,
            channels=None if containerized else self.channels,
            language=self.language,
            interim_results=self.interim_results,
            punctuate=self.punctuate,
            diarize=self.diarize,
            utterance_end_ms=UTTERANCE_END_MS if self.interim_results else None,
        )


def parse_start(payload: Any, default_language: str | None = None) -> StreamOptions:
    """The options of a `start` message (every field optional); StreamError naming each bad field."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise StreamError("bad_message", "start takes an object: {language, encoding, sample_rate, channels, ...}")
    encoding = payload.get("encoding", "linear16")
    if not isinstance(encoding, str) or encoding.lower() not in ENCODINGS:
        raise StreamError(
            "unsupported_encoding",
            f"encoding must be one of {', '.join(ENCODINGS)}",
            {"supported": list(ENCODINGS)},
        )
    problems: dict[str, str] = {}
    sample_rate = _integer(payload, "sample_rate", 16_000, SAMPLE_RATES, problems)
    channels = _integer(payload, "channels", 1, (1, MAX_CHANNELS), problems)
    flags = {
        name: _boolean(payload, name, default, problems)
        for name, default in (("interim_results", True), ("punctuate", True), ("diarize", False))
    }
    language = payload.get("language")
    if language in (None, ""):
        language = default_language or None
        where = "lang"
    else:
        where = "language"
    if language is not None and (not isinstance(language, str) or not _LANGUAGE.match(language)):
        problems[where] = "must be a language code such as en, en-US or pt-BR"
    if problems:
        detail = "; ".join(f"{name} {problem}" for name, problem in problems.items())
        raise StreamError("invalid_options", f"invalid start options: {detail}", {"fields": problems})
    return StreamOptions(
        encoding=encoding.lower(),
        sample_rate=sample_rate,
        channels=channels,
        language=language,
        interim_results=flags["interim_results"],
        punctuate=flags["punctuate"],
        diarize=flags["diarize"],
    )


def _integer(
    payload: dict[str, Any], name: str, default: int, bounds: tuple[int, int], problems: dict[str, str]
) -> int:
    value = payload.get(name, default)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        problems[name] = f"must be a whole number from {bounds[0]} to {bounds[1]}"
        return default
    return value


def _boolean(payload: dict[str, Any], name: str, default: bool, problems: dict[str, str]) -> bool:
    value = payload.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_WORDS:
        return _BOOLEAN_WORDS[value.strip().lower()]
    problems[name] = "must be true or false"
    return default
