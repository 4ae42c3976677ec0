"""Provider cooldown (a simple circuit breaker) and the router's per-provider metrics."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from core.errors import LatticeError
from core.monitoring.latency import LatencySeries


@dataclass(frozen=True)
class CooldownState:
    """Inspectable state of one provider (for the Metrics page)."""

    provider: str
    consecutive_failures: int
    cooling: bool
    cooldown_until: float | None  # clock seconds; None when not cooling
    remaining: float  # seconds left, 0 when not cooling
    last_error: str


class CooldownTracker:
    """Cool a provider down after ``threshold`` consecutive failed attempts.

    While cooling, the router skips the provider (and says so in the trace). After
    ``cooldown`` seconds it is tried again; one success resets the count.

    Parameters
    ----------
    threshold : int
        Consecutive failures that trigger a cooldown (default 3).
    cooldown : float
        Cooldown length, seconds (default 30).
    clock : callable
        Monotonic seconds (injectable for tests).
    """

    def __init__(self, threshold: int = 3, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic):
        if threshold < 1 or cooldown < 0:
            raise LatticeError(f"cooldown needs threshold >= 1 and cooldown >= 0 s, got {threshold}, {cooldown}")
        self.threshold, self.cooldown, self._clock = int(threshold), float(cooldown), clock
        self._fails: dict[str, int] = {}
        self._until: dict[str, float] = {}
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def record_failure(self, provider: str, message: str = "", cool_for: float | None = None) -> bool:
        """Count a failure; returns True when this starts (or extends) a cooldown.

        ``cool_for`` forces a cooldown of that many seconds at once (a Retry-After
        longer than the router is willing to wait).
        """
        with self._lock:
            n = self._fails.get(provider, 0) + 1
            self._fails[provider] = n
            self._last[provider] = message
            now = self._clock()
            length = None
            if cool_for is not None:
                length = max(float(cool_for), self.cooldown if n >= self.threshold else 0.0)
            elif n >= self.threshold:
                length = self.cooldown
            if length is not None and length > 0:
                self._until[provider] = max(self._until.get(provider, now), now + length)
                return True
            return False

    def record_success(self, provider: str) -> None:
        with self._lock:
            self._fails[provider] = 0
            self._until.pop(provider, None)

    def cooling_until(self, provider: str) -> float | None:
        """Clock time the cooldown ends, or None if the provider may be used now."""
        with self._lock:
            until = self._until.get(provider)
            if until is None:
                return None
            if self._clock() >= until:
                del self._until[provider]
                self._fails[provider] = 0  # half-open: the next attempt decides
                return None
            return until

    def state(self, provider: str) -> CooldownState:
        until = self.cooling_until(provider)
        with self._lock:
            return CooldownState(provider, self._fails.get(provider, 0), until is not None, until,
                                 max(0.0, until - self._clock()) if until is not None else 0.0,
                                 self._last.get(provider, ""))


@dataclass
class ProviderStats:
    calls: int = 0  # attempts made
    errors: int = 0  # attempts that failed
    skipped: int = 0  # requests where the provider was skipped (no key, cooling)


class RouterMetrics:
    """Per-provider counters and latency samples, for the Metrics page."""

    def __init__(self, maxlen: int = 2000):
        self._stats: dict[str, ProviderStats] = {}
        self._latency: dict[str, LatencySeries] = {}
        self._maxlen = maxlen
        self._lock = threading.Lock()

    def _get(self, provider: str) -> tuple[ProviderStats, LatencySeries]:
        with self._lock:
            if provider not in self._stats:
                self._stats[provider] = ProviderStats()
                self._latency[provider] = LatencySeries(self._maxlen)
            return self._stats[provider], self._latency[provider]

    def record_attempt(self, provider: str, ok: bool, latency: float, when: float) -> None:
        stats, lat = self._get(provider)
        with self._lock:
            stats.calls += 1
            stats.errors += 0 if ok else 1
        lat.add(when, latency)

    def record_skip(self, provider: str) -> None:
        stats, _ = self._get(provider)
        with self._lock:
            stats.skipped += 1

    def latency_samples(self, provider: str) -> list[tuple[float, float]]:
        return self._get(provider)[1].samples()

    def snapshot(self) -> dict[str, dict]:
        """``{provider: {calls, errors, error_rate, skipped, latency_p50, latency_p95, samples}}``."""
        with self._lock:
            names = list(self._stats)
        out = {}
        for name in names:
            stats, lat = self._get(name)
            summ = lat.summary()
            out[name] = {"calls": stats.calls, "errors": stats.errors, "skipped": stats.skipped,
                         "error_rate": stats.errors / stats.calls if stats.calls else 0.0,
                         "latency_p50": summ["p50"], "latency_p95": summ["p95"], "samples": summ["count"]}
        return out
