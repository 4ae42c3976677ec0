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
from typing import Callable, Iterable, Mapping

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from core.engine import Lattice, fading_times
from core.errors import LatticeError

LatticeSummaries = Callable[[], Mapping[str, Mapping[str, float]]]
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

    def __init__(self, lattices: LatticeSummaries | None = None, cache=None, router=None, reflection_latency=None):
        self.lattices, self.cache, self.router, self.latency = lattices, cache, router, reflection_latency

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
