"""Per-user rate limiting of reflections: a token bucket per user."""
from __future__ import annotations

import threading
import time
from typing import Callable

from core.errors import LatticeError


class RateLimitExceeded(LatticeError):
    """A user asked for more reflections than the per-user limit allows."""

    def __init__(self, user: str, retry_after: float, capacity: int, period: float):
        super().__init__(
            f"rate limit reached for user {user!r}: at most {capacity} reflections per {period:g} s; "
            f"try again in {retry_after:.1f} s")
        self.user = user
        self.retry_after = retry_after


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

    def remaining(self, user: str) -> float:
        with self._lock:
            bucket = self._buckets.get(user)
            return float(self.capacity) if bucket is None else bucket.tokens
