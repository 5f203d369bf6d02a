"""Provider calls: how many, how slow, how many failed and the last failure, per provider and kind.

    calls = ProviderCalls(configured={"deepgram": True, "openai": False}, on_observe=metrics.observe_provider)
    async with calls.measure("deepgram", "transcribe"): ...      # times it; an exception counts as an error
    calls.record("deepgram", "live", seconds=0.4, error="provider_timeout")   # for callers that time themselves
    calls.status()   # {"deepgram": {configured, requests, errors, error_rate, last_error, last_error_at, ...}}

`instrument(providers, calls)` wraps the configured transcribers and translators in place, so every route and
job that asks `providers.transcriber(name)` is measured without the providers knowing. Error rates cover the
last WINDOW_S seconds; the Prometheus counters (through `on_observe`) cover the process's life.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import APIError
from ..providers.registry import Providers
from ..providers.results import AudioUpload, Transcriber, TranscriptResult, TranslationResult, Translator

WINDOW_S = 300.0  # error rate and latency percentiles over the last five minutes
WINDOW_CALLS = 1000  # at most this many recent calls per provider are kept for them
# Error labels are the service's own codes; anything else is "exception" (label values stay a small set).
KNOWN_ERRORS = frozenset(
    {
        "provider_timeout",
        "provider_error",
        "provider_unconfigured",
        "undecodable_audio",
        "empty_audio",
        "payload_too_large",
        "rate_limited",
        "validation_error",
        "connect_failed",
        "disconnected",
    }
)

Observer = Callable[[str, str, float, str | None], None]


def error_label(exc: BaseException) -> str:
    code = exc.code if isinstance(exc, APIError) else ""
    return code if code in KNOWN_ERRORS else "exception"


def _describe(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, APIError) else type(exc).__name__
    return text.splitlines()[0][:200] if text else type(exc).__name__


@dataclass
class _Provider:
    recent: deque[tuple[float, float, bool]] = field(default_factory=lambda: deque(maxlen=WINDOW_CALLS))
    requests: int = 0
    errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    kinds: set[str] = field(default_factory=set)


class ProviderCalls:
    def __init__(
        self,
        configured: Mapping[str, bool],
        *,
        on_observe: Observer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.configured = dict(configured)
        self.on_observe = on_observe
        self.clock = clock
        self._providers: dict[str, _Provider] = {}

    def record(
        self, provider: str, kind: str, *, seconds: float, error: str | None = None, detail: str | None = None
    ) -> None:
        now = self.clock()
        entry = self._providers.setdefault(provider, _Provider())
        entry.requests += 1
        entry.kinds.add(kind)
        entry.recent.append((now, seconds, error is not None))
        if error is not None:
            entry.errors += 1
            entry.last_error = f"{kind}: {detail or error}"[:240]
            entry.last_error_at = now
        if self.on_observe is not None:
            self.on_observe(provider, kind, seconds, error)

    @contextlib.asynccontextmanager
    async def measure(self, provider: str, kind: str) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.record(
                provider, kind, seconds=time.perf_counter() - started, error=error_label(exc), detail=_describe(exc)
            )
            raise
        self.record(provider, kind, seconds=time.perf_counter() - started)

    def status(self) -> dict[str, dict[str, Any]]:
        """Every configured or used provider: counts over WINDOW_S, latency percentiles, the last error."""
        now = self.clock()
        result: dict[str, dict[str, Any]] = {}
        for name in sorted(set(self.configured) | set(self._providers)):
            entry = self._providers.get(name, _Provider())
            recent = [(s, failed) for at, s, failed in entry.recent if now - at <= WINDOW_S]
            errors = sum(1 for _, failed in recent if failed)
            latencies = sorted(s * 1000 for s, _ in recent)
            result[name] = {
                "configured": self.configured.get(name, True),
                "requests": len(recent),
                "errors": errors,
                "error_rate": round(errors / len(recent), 4) if recent else 0.0,
                "latency_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99)},
                "last_error": entry.last_error,
                "last_error_at": entry.last_error_at,
                "requests_total": entry.requests,
                "errors_total": entry.errors,
                "window_s": WINDOW_S,
            }
        return result


def percentile(ordered: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return round(ordered[rank - 1], 2)


class MeasuredTranscriber:
    def __init__(self, inner: Transcriber, calls: ProviderCalls) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = calls

    async def transcribe(self, upload: AudioUpload, language: str | None) -> TranscriptResult:
        async with self.calls.measure(self.name, "transcribe"):
            return await self.inner.transcribe(upload, language)


class MeasuredTranslator:
    def __init__(self, inner: Translator, calls: ProviderCalls) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = calls

    async def translate(self, text: str, target: str, source: str | None) -> TranslationResult:
        async with self.calls.measure(self.name, "translate"):
            return await self.inner.translate(text, target, source)


def instrument(providers: Providers, calls: ProviderCalls) -> Providers:
    """Wrap every configured transcriber and translator (once) so their calls are measured."""
    for name, transcriber in list(providers.transcribers.items()):
        if not isinstance(transcriber, MeasuredTranscriber):
            providers.transcribers[name] = MeasuredTranscriber(transcriber, calls)
    for name, translator in list(providers.translators.items()):
        if not isinstance(translator, MeasuredTranslator):
            providers.translators[name] = MeasuredTranslator(translator, calls)
    return providers
