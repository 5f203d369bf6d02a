"""Event-loop lag: how late the loop runs a timer, sampled continuously while the process serves.

A sampler task sleeps SAMPLE_S at a time and records how much later than asked it woke up: the time a
callback waited behind others (a blocking call, a long synchronous step, CPU starvation). Percentiles cover
a recent window (the dashboard's interval); each sample also goes to `on_sample` (the Prometheus histogram).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

from .providers import percentile

SAMPLE_S = 0.25
KEEP_S = 120.0  # samples older than this are dropped


class LoopLag:
    def __init__(self, *, sample_s: float = SAMPLE_S, on_sample: Callable[[float], None] | None = None) -> None:
        self.sample_s = sample_s
        self.on_sample = on_sample
        self._samples: deque[tuple[float, float]] = deque(maxlen=int(KEEP_S / sample_s) + 1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="monitoring-loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def record(self, lag_s: float, at: float | None = None) -> None:
        self._samples.append((time.monotonic() if at is None else at, max(0.0, lag_s)))
        if self.on_sample is not None:
            self.on_sample(max(0.0, lag_s))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.sample_s)
            self.record(loop.time() - asked - self.sample_s)

    def summary(self, window_s: float) -> dict[str, float | int | None]:
        """p50, p99 and max lag (ms) over the last `window_s` seconds, and how many samples that was."""
        since = time.monotonic() - window_s
        lags = sorted(lag * 1000 for at, lag in self._samples if at >= since)
        return {
            "p50": percentile(lags, 50),
            "p99": percentile(lags, 99),
            "max": round(lags[-1], 2) if lags else None,
            "samples": len(lags),
            "window_s": window_s,
        }
