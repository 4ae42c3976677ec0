"""Latency samples: a bounded, thread-safe series of (time, seconds) with p50/p95.

Used for the reflection latency (Metrics page, Prometheus exporter) and, per provider,
by the LLM router's metrics.
"""
from __future__ import annotations

import threading
from collections import deque

import numpy as np


def percentile(samples: "list[float] | np.ndarray", q: float) -> float | None:
    """The q-th percentile (0..100) of ``samples``, None when empty."""
    arr = np.asarray(samples, dtype=np.float64)
    return float(np.percentile(arr, q)) if arr.size else None


class LatencySeries:
    """Bounded, thread-safe series of (time, latency seconds) samples with p50/p95."""

    def __init__(self, maxlen: int = 2000):
        self._samples: deque[tuple[float, float]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, when: float, seconds: float) -> None:
        with self._lock:
            self._samples.append((float(when), float(seconds)))

    def samples(self) -> list[tuple[float, float]]:
        with self._lock:
            return list(self._samples)

    def summary(self) -> dict[str, float | int | None]:
        values = [s for _, s in self.samples()]
        return {"count": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}
