"""Rate limits per identity (a user or an API key) that hold across nodes.

Two limits, each "N per period" in a moving window (never more than N grants in any
window of that length, the strictest of the `limits` library's strategies):

- ``requests``: every API request of an identity (``LATTICE_API_RATE_LIMIT``, default 300/minute);
- ``reflections``: reflections of an identity, from the API, the app or the CLI
  (``LATTICE_REFLECTION_RATE_LIMIT``, default 10/minute as before).

Where the counts live (:class:`RateStore`): with ``LATTICE_REDIS_URL`` set, in Redis, so
every node counts together and a limit of 10/minute is 10/minute for the whole deployment
(``shared``); keys ``<prefix>:rate:<requests|reflections>/<identity>/<N>/<M>/<unit>`` with
the prefix ``LATTICE_REDIS_PREFIX`` (default gem-lattice).
Without it, in this process's memory, with one WARNING saying so: N nodes then allow up
to N times the limit.

If Redis is configured but cannot be reached, the limits fail *soft*, not open and not
closed: each node counts in its own memory (so a user gets at most nodes x limit while
Redis is down, never unlimited, and a Redis outage does not take the API down with it),
logs one WARNING when Redis is lost and one INFO when it is back, counts the outage in
:meth:`RateStore.stats` (``storage_errors``, ``degraded``), and tries Redis again after
``retry_s`` seconds. Counts made in memory during the outage are not copied to Redis.

The moving window on Redis uses each node's wall clock (``time.time``): nodes' clocks
should agree to well under the period (NTP), as they do on one machine.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, TypeVar
from urllib.parse import urlsplit

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from core.errors import LatticeError
from core.reflection.ratelimit import RateLimitExceeded

_warned_unshared = False  # the per-process warning was logged (RateLimits.from_env)

log = logging.getLogger(__name__)

REDIS_URL_ENV = "LATTICE_REDIS_URL"
REDIS_PREFIX_ENV = "LATTICE_REDIS_PREFIX"
API_LIMIT_ENV = "LATTICE_API_RATE_LIMIT"
REFLECTION_LIMIT_ENV = "LATTICE_REFLECTION_RATE_LIMIT"
DEFAULT_PREFIX = "gem-lattice"
DEFAULT_API_LIMIT = "300/minute"
DEFAULT_REFLECTION_LIMIT = "10/minute"
REDIS_SCHEMES = ("redis", "rediss", "redis+unix")

T = TypeVar("T")


def parse_limit(text: str, variable: str = "the rate limit") -> RateLimitItem:
    """One rate limit from its text ("10/minute", "300 per 2 hours"), validated.

    Raises :class:`LatticeError` naming ``variable`` (the setting it came from) with an
    example, for text that is not one limit of at least 1 per a positive period.
    """
    hint = (f"{variable} must be one limit such as '10/minute', '300 per 1 minute' or '1000/hour' "
            f"(units: second, minute, hour, day)")
    if not isinstance(text, str) or not text.strip():
        raise LatticeError(f"{hint}; it is empty")
    try:
        items = parse_many(text.strip())
    except ValueError:
        raise LatticeError(f"{hint}; got {text!r}") from None
    if len(items) != 1:
        raise LatticeError(f"{hint}, not several; got {text!r}")
    if items[0].amount < 1:
        raise LatticeError(f"{hint}, allowing at least 1; got {text!r}")
    return items[0]


def _redis_location(url: str) -> str:
    """host:port/db of a Redis URL, without credentials (for log lines)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"


class RateStore:
    """Where the counts live: Redis (shared by every node) or this process's memory.

    Parameters
    ----------
    redis_url : str, optional
        ``redis://host:6379/0`` (also ``rediss://``, ``redis+unix://``); None = memory only.
    prefix : str
        Key prefix in Redis; rate-limit keys are ``<prefix>:rate:...``.
    retry_s : float
        Seconds to count in memory after Redis failed before trying Redis again.
    timeout_s : float
        Redis connect and read timeout, in seconds: a hung Redis costs a request at most
        about this (twice, with the one immediate retry), then ``retry_s`` of memory counting.
    """

    def __init__(self, redis_url: str | None = None, *, prefix: str = DEFAULT_PREFIX, retry_s: float = 5.0,
                 timeout_s: float = 0.5, variable: str = REDIS_URL_ENV):
        self.url = (redis_url or "").strip() or None
        self.retry_s = float(retry_s)
        self._lock = threading.Lock()
        self._memory: MovingWindowRateLimiter | None = None
        self._redis: MovingWindowRateLimiter | None = None
        self._redis_errors: tuple[type[BaseException], ...] = ()
        self._down_until = 0.0  # monotonic seconds; Redis is skipped before this
        self._outage = False  # between a Redis failure and the next success: one WARNING, one INFO
        self.storage_errors = 0
        self.memory_grants = 0  # decisions made in memory while Redis was configured but down
        if self.url is not None:
            if urlsplit(self.url).scheme not in REDIS_SCHEMES:
                raise LatticeError(f"{variable} must be a Redis URL such as redis://127.0.0.1:6379/0; got scheme "
                                   f"{urlsplit(self.url).scheme!r}")
            if not prefix or not isinstance(prefix, str):
                raise LatticeError(f"{REDIS_PREFIX_ENV} must be a non-empty key prefix such as 'gem-lattice'")
            from redis.backoff import NoBackoff
            from redis.retry import Retry
            # redis-py's default retries with backoff of up to seconds; a rate limiter must
            # answer fast, so one immediate retry (a pooled connection Redis dropped) only
            storage = RedisStorage(self.url, key_prefix=f"{prefix}:rate", socket_connect_timeout=timeout_s,
                                   socket_timeout=timeout_s, retry=Retry(NoBackoff(), 1))
            self._redis = MovingWindowRateLimiter(storage)
            self._redis_errors = (storage.base_exceptions, OSError)
            self.location = _redis_location(self.url)
        else:
            self.location = "process memory"

    @property
    def shared(self) -> bool:
        """True when the counts are in Redis, so every node counts together."""
        return self._redis is not None

    @property
    def degraded(self) -> bool:
        """True while Redis is configured but down and counts are kept in this process's memory."""
        with self._lock:
            return self._outage

    def ping(self) -> bool:
        """Whether Redis answers now (True for a memory store); a failure starts a degraded spell."""
        if self._redis is None:
            return True
        try:
            self._redis.storage.get_connection().ping()
        except self._redis_errors as exc:
            self._lost(exc)
            return False
        return True

    def _memory_strategy(self) -> MovingWindowRateLimiter:
        with self._lock:
            if self._memory is None:
                self._memory = MovingWindowRateLimiter(MemoryStorage())
            return self._memory

    def _lost(self, exc: BaseException) -> None:
        with self._lock:
            first, self._outage = not self._outage, True
            self.storage_errors += 1
            self._down_until = time.monotonic() + self.retry_s
        if first:
            log.warning("rate limits: Redis at %s unreachable (%s: %s); counting in this process's memory, "
                        "so each node allows the full limit, until Redis answers again (retried every %g s)",
                        self.location, type(exc).__name__, exc, self.retry_s)

    def run(self, op: Callable[[MovingWindowRateLimiter], T]) -> T:
        """``op(strategy)`` on Redis, or on process memory when there is no Redis or it is down."""
        if self._redis is not None:
            with self._lock:
                skip = time.monotonic() < self._down_until
            if not skip:
                try:
                    result = op(self._redis)
                except self._redis_errors as exc:
                    self._lost(exc)
                else:
                    with self._lock:
                        back, self._outage = self._outage, False
                    if back:
                        log.info("rate limits: Redis at %s answers again; counts are shared by every node",
                                 self.location)
                    return result
            with self._lock:
                self.memory_grants += 1
        return op(self._memory_strategy())

    def stats(self) -> dict:
        """Storage kind, location, whether degraded, Redis errors and decisions made in memory."""
        return {"shared": self.shared, "storage": "redis" if self.shared else "memory",
                "location": self.location, "degraded": self.degraded, "storage_errors": self.storage_errors,
                "memory_decisions": self.memory_grants}


class Limiter:
    """One rate limit ("10/minute") per identity, on a :class:`RateStore` (moving window).

    Parameters
    ----------
    limit : str
        "N/unit" or "N per M units" (second, minute, hour, day).
    store : RateStore, optional
        Where the counts live; default a private memory store.
    name : str
        What is limited, in plural ("requests", "reflections"): the key namespace and
        the wording of :class:`RateLimitExceeded`.
    variable : str
        The setting ``limit`` came from, named in a bad-value error.
    """

    def __init__(self, limit: str, store: RateStore | None = None, *, name: str = "requests",
                 variable: str = "the rate limit"):
        item = parse_limit(limit, variable)
        # the namespace keeps the two limits' counts apart even at equal N and period
        self.item: RateLimitItem = type(item)(item.amount, item.multiples, namespace=name)
        self.store = store or RateStore()
        self.name = name
        self.refused = 0  # refusals in this process (a metric)
        self._lock = threading.Lock()

    @property
    def limit(self) -> str:
        """The limit in words, e.g. "10 per 1 minute"."""
        return repr(self.item)

    @property
    def capacity(self) -> int:
        """Grants allowed per period."""
        return self.item.amount

    @property
    def period(self) -> float:
        """The window, in seconds."""
        return float(self.item.get_expiry())

    @staticmethod
    def _check(identity: str) -> str:
        if not isinstance(identity, str) or not identity.strip():
            raise LatticeError("a rate limit needs the caller's identity (a user name or an API key id); got none")
        return identity

    def acquire(self, identity: str) -> None:
        """Count one grant for ``identity``, or raise :class:`RateLimitExceeded` (nothing counted)
        with ``retry_after`` = seconds (> 0) until the oldest grant in the window expires."""
        identity = self._check(identity)

        def hit(strategy: MovingWindowRateLimiter) -> float:
            if strategy.hit(self.item, identity):
                return 0.0
            reset = strategy.get_window_stats(self.item, identity).reset_time
            return max(reset - time.time(), 0.01)  # expired meanwhile: "now", never 0 or negative

        wait = self.store.run(hit)
        if wait > 0.0:
            with self._lock:
                self.refused += 1
            raise RateLimitExceeded(identity, wait, self.capacity, self.period, what=self.name)

    def remaining(self, identity: str) -> int:
        """Grants ``identity`` has left in the current window (0 .. capacity)."""
        identity = self._check(identity)
        left = self.store.run(lambda s: s.get_window_stats(self.item, identity).remaining)
        return max(0, min(self.capacity, int(left)))

    def __repr__(self) -> str:
        return f"Limiter({self.name}: {self.limit}, {self.store.location})"


class RateLimits:
    """The process's rate limits: ``requests`` and ``reflections``, on one :class:`RateStore`.

    Parameters
    ----------
    requests, reflections : str
        Limit texts; see :func:`parse_limit`.
    store : RateStore, optional
        Default: process memory.
    """

    def __init__(self, requests: str = DEFAULT_API_LIMIT, reflections: str = DEFAULT_REFLECTION_LIMIT,
                 store: RateStore | None = None):
        self.store = store or RateStore()
        self.requests = Limiter(requests, self.store, name="requests", variable=API_LIMIT_ENV)
        self.reflections = Limiter(reflections, self.store, name="reflections", variable=REFLECTION_LIMIT_ENV)

    @property
    def shared(self) -> bool:
        """True when on Redis: every node counts together."""
        return self.store.shared

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, server: bool = True) -> RateLimits:
        """From ``LATTICE_REDIS_URL``, ``LATTICE_REDIS_PREFIX``, ``LATTICE_API_RATE_LIMIT`` and
        ``LATTICE_REFLECTION_RATE_LIMIT`` (a bad value raises LatticeError naming it).

        ``server=False`` (a one-shot command): per-process limits are what it needs, so their
        note is logged at DEBUG instead of the WARNING a server node gets."""
        env = os.environ if environ is None else environ
        url = env.get(REDIS_URL_ENV, "").strip()
        prefix = env.get(REDIS_PREFIX_ENV, "").strip() or DEFAULT_PREFIX
        requests = env.get(API_LIMIT_ENV, "").strip() or DEFAULT_API_LIMIT
        reflections = env.get(REFLECTION_LIMIT_ENV, "").strip() or DEFAULT_REFLECTION_LIMIT
        limits = cls(requests, reflections, RateStore(url or None, prefix=prefix))
        if not url:
            global _warned_unshared
            loud = server and not _warned_unshared  # said once per process, however many workbenches
            _warned_unshared = _warned_unshared or loud
            log.log(logging.WARNING if loud else logging.DEBUG, "rate limits are per process (%s not set): each node allows, per identity, requests %s and "
                        "reflections %s on its own; set %s=redis://host:6379/0 to share them", REDIS_URL_ENV,
                        limits.requests.limit, limits.reflections.limit, REDIS_URL_ENV)
        elif limits.store.ping():
            log.info("rate limits shared through Redis at %s (prefix %r), per identity: requests %s, reflections %s",
                     limits.store.location, prefix, limits.requests.limit, limits.reflections.limit)
        return limits

    def stats(self) -> dict:
        """Storage (see :meth:`RateStore.stats`), the two limits and how often each refused in this process."""
        return {**self.store.stats(), "requests": self.requests.limit, "reflections": self.reflections.limit,
                "refused": {"requests": self.requests.refused, "reflections": self.reflections.refused}}
