"""The one retry loop: classification of failures, exponential backoff with jitter.

The SDK clients are built with ``max_retries=0`` so that retries happen only here.
Retried: HTTP 408, 409, 429 and 5xx, connection errors and timeouts. Not retried:
every other 4xx (a bad request or key does not get better by asking again).
``Retry-After`` (seconds or an HTTP date) and ``retry-after-ms`` are honoured.
"""
from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from core.errors import LatticeError

RETRYABLE_STATUS = frozenset({408, 409, 429})

T = TypeVar("T")


class ProviderError(LatticeError):
    """A provider-level failure the router classifies (e.g. an error event in a stream)."""

    def __init__(self, message: str, status_code: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable


@dataclass(frozen=True)
class RetryPolicy:
    """Retry and timeout settings of one provider call.

    Parameters
    ----------
    max_attempts : int
        Attempts per provider per request (1 = no retry).
    base_delay : float
        Seconds before the first retry; doubles with each further attempt.
    max_delay : float
        Cap on one backoff delay, seconds. A Retry-After longer than this is not
        waited for: the router falls back to the next provider instead.
    jitter : float
        Fraction of each delay that is random (0 = none, 1 = "full jitter").
    timeout : float
        Per-call timeout, seconds (passed to the SDK call).
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise LatticeError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not (self.base_delay >= 0 and self.max_delay >= 0 and 0 <= self.jitter <= 1 and self.timeout > 0):
            raise LatticeError("retry policy: delays must be >= 0, jitter in [0, 1], timeout > 0")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay in seconds after failed attempt number ``attempt`` (1-based)."""
        d = min(self.max_delay, self.base_delay * (2.0 ** (attempt - 1)))
        return d * (1.0 - self.jitter) + d * self.jitter * rng.random()


@dataclass(frozen=True)
class Failure:
    """A classified exception: kind ('status', 'connection', 'timeout', 'other')."""

    kind: str
    retryable: bool
    status_code: int | None
    retry_after: float | None
    message: str


def parse_retry_after(headers: Any, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` headers, or None."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            v = float(ms) / 1000.0
            return v if math.isfinite(v) and v >= 0 else None
        raw = headers.get("retry-after")
    except Exception:
        return None
    if raw is None:
        return None
    try:
        v = float(raw)
        return v if math.isfinite(v) and v >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _status_of(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    if isinstance(code, int):
        return code
    resp = getattr(exc, "response", None)
    code = getattr(resp, "status_code", None)
    return code if isinstance(code, int) else None


def classify(exc: BaseException) -> Failure:
    """Decide whether ``exc`` is worth retrying (SDK errors of OpenAI/Anthropic, httpx2)."""
    msg = f"{type(exc).__name__}: {exc}".strip()
    if len(msg) > 300:
        msg = msg[:297] + "..."
    names = {c.__name__ for c in type(exc).__mro__}
    if isinstance(exc, ProviderError):
        code = exc.status_code
        retry = exc.retryable or (code is not None and (code in RETRYABLE_STATUS or code >= 500))
        return Failure("status" if code else "other", retry, code, None, msg)
    if "APITimeoutError" in names or "TimeoutException" in names or isinstance(exc, TimeoutError):
        return Failure("timeout", True, None, None, msg)
    if "APIConnectionError" in names or "TransportError" in names or isinstance(exc, ConnectionError):
        return Failure("connection", True, None, None, msg)
    code = _status_of(exc)
    if code is not None and ("APIStatusError" in names or "HTTPStatusError" in names):
        headers = getattr(getattr(exc, "response", None), "headers", None)
        retry = code in RETRYABLE_STATUS or code >= 500 or _error_type(exc) in RETRYABLE_ERROR_TYPES
        return Failure("status", retry, code, parse_retry_after(headers), msg)
    return Failure("other", False, code, None, msg)


# error types that an SSE ``error`` event carries mid-stream (HTTP status still 200)
RETRYABLE_ERROR_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error",
                                   "server_error", "rate_limit_exceeded"})


def _error_type(exc: BaseException) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            kind = err.get("type") or err.get("code")
            return kind if isinstance(kind, str) else None
    return None


def call_with_retry(fn: Callable[[], T], policy: RetryPolicy, *, sleep: Callable[[float], None] | None = None,
                    rng: random.Random | None = None) -> T:
    """Call ``fn`` with the retry policy (for non-streaming calls such as embeddings).

    Raises the last exception when attempts are exhausted or it is not retryable.
    """
    sleep = sleep or time.sleep
    rng = rng or random.Random()
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return fn()
        except Exception as exc:
            f = classify(exc)
            if not f.retryable or attempt == policy.max_attempts:
                raise
            delay = f.retry_after if f.retry_after is not None else policy.backoff(attempt, rng)
            if delay > policy.max_delay:
                raise
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
