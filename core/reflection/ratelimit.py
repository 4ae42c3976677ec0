"""Per-user rate limiting of reflections: the limiter protocol, its refusal, and an
in-process token bucket per user.

The limiter a Workbench uses by default is the shared one of core.service.rate_limits
(Redis across nodes, or process memory); :class:`UserRateLimiter` stays for a single
process with an injectable clock (tests, benchmarks). Both satisfy :class:`RateLimiter`.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

from core.errors import LatticeError


class RateLimitExceeded(LatticeError):
    """An identity (user or API key) asked for more than its limit allows.

    Attributes: ``user`` (the identity), ``retry_after`` (seconds until one more is
    allowed, > 0), ``capacity`` and ``period`` (seconds) of the limit, ``what`` (plural
    noun of what is limited: "reflections", "requests").
    """

    def __init__(self, user: str, retry_after: float, capacity: int, period: float, what: str = "reflections"):
        super().__init__(
            f"rate limit reached for user {user!r}: at most {capacity} {what} per {period:g} s; "
            f"try again in {retry_after:.1f} s")
        self.user = user
        self.retry_after = retry_after
        self.capacity, self.period, self.what = int(capacity), float(period), what


class RateLimiter(Protocol):
    """What a reflection engine needs of a limiter."""

    def acquire(self, identity: str) -> None:
        """Count one, or raise :class:`RateLimitExceeded`."""

    def remaining(self, identity: str) -> float:
        """How many are left now for ``identity``."""


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``capacity / period`` per second.

    Parameters
    ----------
    capacity : int
        Burst size: requests allowed at once.
    period : float
        Seconds to refill a full bucket (so the sustained rate is capacity/period).
    clock : callable
        Monotonic seconds (injectable for tests).
    """

    def __init__(self, capacity: int, period: float, clock: Callable[[], float] = time.monotonic):
        if capacity < 1 or not period > 0:
            raise LatticeError(f"rate limit needs capacity >= 1 and period > 0 s, got {capacity}, {period}")
        self.capacity, self.period, self._clock = int(capacity), float(period), clock
        self._tokens = float(capacity)
        self._stamp = clock()

    @property
    def rate(self) -> float:
        return self.capacity / self.period

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.capacity), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_acquire(self) -> tuple[bool, float]:
        """Take one token: (True, 0) or (False, seconds until one is available)."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True, 0.0
        return False, (1.0 - self._tokens) / self.rate

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens


class UserRateLimiter:
    """One token bucket per user; :meth:`acquire` raises :class:`RateLimitExceeded`.

    Default: 10 reflections per 60 s per user (bursts of 10).
    """

    def __init__(self, capacity: int = 10, period: float = 60.0, clock: Callable[[], float] = time.monotonic):
        TokenBucket(capacity, period, clock)  # validate once, early
        self.capacity, self.period, self._clock = int(capacity), float(period), clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def acquire(self, user: str) -> None:
        with self._lock:
            bucket = self._buckets.get(user)
            if bucket is None:
                bucket = self._buckets[user] = TokenBucket(self.capacity, self.period, self._clock)
            ok, wait = bucket.try_acquire()
        if not ok:
            raise RateLimitExceeded(user, wait, self.capacity, self.period)

    @property
    def limit(self) -> str:
        """The limit in words, e.g. "10 per 60 s"."""
        return f"{self.capacity} per {self.period:g} s"

    def remaining(self, user: str) -> float:
        with self._lock:
            bucket = self._buckets.get(user)
            return float(self.capacity) if bucket is None else bucket.tokens
