"""Prometheus exposition of the seed's metrics: lattice coherence, response latency,
cache hit ratio and error rates (off by default; ``LATTICE_METRICS_PORT`` turns it on).

A custom collector reads the live objects at scrape time (the resonance cache, the
LLM router, the reflection latency series, lattice summaries), so nothing is counted
twice and the exporter cannot drift from what the Metrics page shows.

Coherence monitoring (the seed's "monitors coherence"): per lattice, the gems at or below
its ``fade_below`` now and the gems crossing it within the next day if nobody uses them
(:func:`fading_summary`, closed form). The alert rules on these gauges live in
``deploy/prometheus/alerts.yml``, unit-tested with ``promtool test rules``.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from core.engine import Lattice, fading_times
from core.errors import LatticeError

LatticeSummaries = Callable[[], Mapping[str, Mapping[str, float]]]
# rows of core.store.ReplicationStatus.figures(): standby, measured_on, lag_bytes, lag_seconds, synchronous
ReplicationFigures = Callable[[], Iterable[Mapping[str, Any]]]
# per target (lattice name, or "(database)"): core.service.scheduled_snapshot_status()
SnapshotStatus = Callable[[], Mapping[str, Mapping[str, float]]]
FADING_WINDOW_S = 86400.0  # "fading soon": within the next day


def fading_summary(lattice: Lattice) -> dict[str, float]:
    """The lattice's fading figures, for the gauges (one closed-form pass over the gems).

    ``faded``: gems with coherence at or below ``params.fade_below`` now; ``fading_soon``:
    gems above it now that reach it within the next day unless observed: 24 h of wall time
    for a wall-clock lattice (which the caller has evolved to now) and one day of lattice
    time for a manual one (its clock only moves when someone advances it), i.e.
    ``86400 s / time unit`` lattice time units either way; ``fade_below`` (coherence, 0-1)
    and ``fading_window`` (that day, in lattice time units).
    """
    theta = lattice.params.fade_below
    window = FADING_WINDOW_S / lattice.params.time_unit_seconds
    above = lattice.coherence > theta
    times = fading_times(lattice, theta)
    soon = above & (times <= lattice.t + window)
    return {"faded": float(len(lattice) - int(np.count_nonzero(above))), "fading_soon": float(np.count_nonzero(soon)),
            "fade_below": float(theta), "fading_window": float(window)}


class WorkbenchCollector(Collector):
    """Collects from whichever sources are given (each optional)."""

    def __init__(self, lattices: LatticeSummaries | None = None, cache=None, router=None, reflection_latency=None,
                 replication: ReplicationFigures | None = None, snapshots: SnapshotStatus | None = None):
        self.lattices, self.cache, self.router, self.latency = lattices, cache, router, reflection_latency
        self.replication = replication  # streaming replication lag (ui.services wires the store's)
        self.snapshots = snapshots  # scheduled snapshots' catalog (ui.services / the backup service wire it)

    def collect(self) -> Iterable:
        if self.lattices is not None:
            gems = GaugeMetricFamily("lattice_gems", "Gems in the lattice", labels=["lattice"])
            coh = GaugeMetricFamily("lattice_mean_coherence", "Mean gem coherence (0-1)", labels=["lattice"])
            order = GaugeMetricFamily("lattice_order_parameter", "Kuramoto order parameter R (0-1)", labels=["lattice"])
            clock = GaugeMetricFamily("lattice_time", "Lattice clock t (lattice time units)", labels=["lattice"])
            faded = GaugeMetricFamily("lattice_gems_faded", "Gems with coherence at or below the lattice's "
                                      "fade_below now", labels=["lattice"])
            soon = GaugeMetricFamily("lattice_gems_fading_soon", "Gems above fade_below now that fall to it "
                                     "within the next day unless used (24 h of wall time for wall-clock "
                                     "lattices, one day of lattice time for manual ones)", labels=["lattice"])
            theta = GaugeMetricFamily("lattice_fade_below", "The lattice's fading threshold (coherence, 0-1)",
                                      labels=["lattice"])
            for name, s in self.lattices().items():
                gems.add_metric([name], s["gems"])
                coh.add_metric([name], s["mean_coherence"])
                order.add_metric([name], s["R"])
                clock.add_metric([name], s["t"])
                if "faded" in s:  # summaries with fading_summary's figures (the Workbench's)
                    faded.add_metric([name], s["faded"])
                    soon.add_metric([name], s["fading_soon"])
                    theta.add_metric([name], s["fade_below"])
            yield from (gems, coh, order, clock, faded, soon, theta)
        if self.cache is not None:
            st = self.cache.stats()
            yield CounterMetricFamily("resonance_cache_hits", "Resonance cache hits", value=st.hits)
            yield CounterMetricFamily("resonance_cache_misses", "Resonance cache misses", value=st.misses)
            yield CounterMetricFamily("resonance_cache_evictions", "Resonance cache evictions", value=st.evictions)
            yield GaugeMetricFamily("resonance_cache_size", "Rankings in the resonance cache", value=st.size)
            yield GaugeMetricFamily("resonance_cache_hit_ratio", "Hits / lookups since start", value=st.hit_ratio)
        if self.router is not None:
            calls = CounterMetricFamily("llm_provider_calls", "LLM provider attempts", labels=["provider"])
            errors = CounterMetricFamily("llm_provider_errors", "Failed LLM provider attempts", labels=["provider"])
            rate = GaugeMetricFamily("llm_provider_error_rate", "Errors / attempts since start", labels=["provider"])
            cooling = GaugeMetricFamily("llm_provider_cooling", "1 while the provider is cooled down", labels=["provider"])
            for name, m in self.router.metrics_snapshot().items():
                calls.add_metric([name], m["calls"])
                errors.add_metric([name], m["errors"])
                rate.add_metric([name], m["error_rate"])
                cooling.add_metric([name], 1.0 if m["cooling"] else 0.0)
            yield from (calls, errors, rate, cooling)
        if self.latency is not None:
            values = [s for _, s in self.latency.samples()]
            yield SummaryMetricFamily("reflection_latency_seconds", "Reflection latency (recent window)",
                                      count_value=len(values), sum_value=float(sum(values)))
            summary = self.latency.summary()
            q = GaugeMetricFamily("reflection_latency_quantile_seconds", "Reflection latency quantiles (recent window)",
                                  labels=["quantile"])
            for label, key in (("0.5", "p50"), ("0.95", "p95")):
                if summary[key] is not None:
                    q.add_metric([label], summary[key])
            yield q
        if self.replication is not None:
            yield from replication_metrics(self.replication)
        if self.snapshots is not None:
            yield from snapshot_metrics(self.snapshots)


def replication_metrics(figures: ReplicationFigures) -> list[GaugeMetricFamily]:
    """The replication gauges: per standby, as its primary sees it (``measured_on="primary"``)
    or as a read replica sees itself (``"standby"``, standby ``self``). An unreachable
    database gives no samples (and a failed scrape of nothing else)."""
    labels = ["standby", "measured_on"]
    lag_b = GaugeMetricFamily("lattice_replication_lag_bytes", "WAL not yet replayed on the standby (bytes)",
                              labels=labels)
    lag_s = GaugeMetricFamily("lattice_replication_lag_seconds", "Replication lag: commit on the primary to "
                              "replay on the standby (seconds; 0 when caught up)", labels=labels)
    sync = GaugeMetricFamily("lattice_replication_synchronous", "1 when commits wait for this standby "
                             "(synchronous commit), 0 for an asynchronous one", labels=labels)
    count = GaugeMetricFamily("lattice_replication_standbys", "Standbys connected to the primary")
    try:
        rows = list(figures())
    except LatticeError:
        return []
    for r in rows:
        key = [str(r["standby"]), str(r["measured_on"])]
        if r.get("lag_bytes") is not None:
            lag_b.add_metric(key, float(r["lag_bytes"]))
        if r.get("lag_seconds") is not None:
            lag_s.add_metric(key, float(r["lag_seconds"]))
        if r.get("synchronous") is not None:
            sync.add_metric(key, float(r["synchronous"]))
    count.add_metric([], float(sum(1 for r in rows if r["measured_on"] == "primary")))
    return [lag_b, lag_s, sync, count]


def snapshot_metrics(status: SnapshotStatus) -> list:
    """The scheduled-snapshot gauges per target (label ``lattice``; ``(database)`` for the whole
    SQLite file), from the snapshot catalog; ``lattice_snapshot_catalog_readable`` is 0 when the
    catalog cannot be read (then no other snapshot series: the SnapshotCatalogUnreadable alert)."""
    labels = ["lattice"]
    last = GaugeMetricFamily("lattice_snapshot_last_success_timestamp_seconds",
                             "When the newest verified snapshot was taken (Unix time, seconds)", labels=labels)
    failures = CounterMetricFamily("lattice_snapshot_failures", "Snapshots that failed to be written or verified, "
                                   "or were found changed later (since the catalog began)", labels=labels)
    failed = GaugeMetricFamily("lattice_snapshot_last_attempt_failed",
                               "1 when the newest snapshot attempt failed or did not verify", labels=labels)
    corrupt = GaugeMetricFamily("lattice_snapshot_corrupt", "Snapshots kept on disk whose verification failed",
                                labels=labels)
    kept = GaugeMetricFamily("lattice_snapshot_kept", "Verified snapshots kept by the retention policy",
                             labels=labels)
    interval = GaugeMetricFamily("lattice_snapshot_interval_seconds", "The schedule's interval (seconds)",
                                 labels=labels)
    size = GaugeMetricFamily("lattice_snapshot_last_size_bytes", "Size of the newest verified snapshot (bytes)",
                             labels=labels)
    readable = GaugeMetricFamily("lattice_snapshot_catalog_readable", "1 when the snapshot catalog can be read")
    try:
        rows = status()
    except LatticeError:
        readable.add_metric([], 0.0)
        return [readable]
    readable.add_metric([], 1.0)
    for target, r in rows.items():
        failures.add_metric([target], r["failures_total"])
        failed.add_metric([target], r["last_attempt_failed"])
        corrupt.add_metric([target], r["corrupt"])
        kept.add_metric([target], r["kept"])
        interval.add_metric([target], r["interval_s"])
        if "last_success" in r:
            last.add_metric([target], r["last_success"])
            size.add_metric([target], r["last_bytes"])
    return [last, failures, failed, corrupt, kept, interval, size, readable]


_started: dict[int, CollectorRegistry] = {}
_lock = threading.Lock()


def metrics_port(env: Mapping[str, str] = os.environ) -> int | None:
    """The port from ``LATTICE_METRICS_PORT`` (None: exporter off)."""
    raw = env.get("LATTICE_METRICS_PORT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise LatticeError(f"LATTICE_METRICS_PORT must be a TCP port number (1-65535), got {raw!r}")
    return int(raw)


def start_exporter(port: int, collector: WorkbenchCollector, addr: str = "127.0.0.1") -> CollectorRegistry:
    """Serve ``collector`` on ``http://addr:port/metrics`` (once per port per process)."""
    with _lock:
        if port in _started:
            return _started[port]
        registry = CollectorRegistry()
        registry.register(collector)
        try:
            start_http_server(port, addr=addr, registry=registry)
        except OSError as exc:
            raise LatticeError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}") from None
        _started[port] = registry
        return registry
