"""Monitoring: figures every feature registers, aggregated across instances, for /monitoring and /metrics.

- `figures`  the registry and its kinds (LiveTable, Tally, CounterFigure), `mask_phone`
- `hub`      `Monitoring`, the per-process instruments held by `Resources`
- `feature`  `MonitoringFeature`: the service, the connections tally, METRICS_BIND's exporter
- `service`  `MonitoringService`: this instance's report, the Redis publisher, the one update emitter
- `cluster`  instance reports in Redis; `snapshot` merges them into one update
- `shared`   figures read from the database (recent calls, usage, jobs)
- `providers`, `loop_lag`, `metrics`, `exporter`   instruments and the Prometheus side
- `adapters` figure sources for the features that exist (calls, live streams)

Services layer: no Quart here; the namespace, the REST routes and the page are in sockets/, api/ and pages/.
"""
