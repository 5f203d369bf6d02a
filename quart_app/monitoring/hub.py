"""`Monitoring`: the per-process instruments every feature may report to (a field of `Resources`).

monitoring.figures      FigureRegistry: tables, tallies and counters the features register
monitoring.providers    ProviderCalls: provider requests, latency and errors (the providers are wrapped)
monitoring.loop_lag     LoopLag: the event loop's timer lag (sampled while the monitoring feature runs)
monitoring.metrics      Metrics: the process's Prometheus registry, fed by all of the above
"""

from __future__ import annotations

from ..settings import Settings
from ..version import VERSION
from .figures import FigureRegistry
from .loop_lag import LoopLag
from .metrics import Metrics
from .providers import ProviderCalls


class Monitoring:
    def __init__(self, settings: Settings) -> None:
        self.instance_id = settings.instance_id
        self.figures = FigureRegistry()
        self.metrics = Metrics(self.figures, instance=settings.instance_id, version=VERSION)
        configured = {name: status.configured for name, status in settings.providers().items()}
        self.providers = ProviderCalls(configured, on_observe=self.metrics.observe_provider)
        self.loop_lag = LoopLag(on_sample=self.metrics.observe_lag)
