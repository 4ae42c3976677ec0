"""Login throttling: failed log-ins counted per user name and per browser session, then a lock-out."""
from __future__ import annotations

import math
import os
import threading
import time
from typing import Callable, Mapping

from core.auth.settings import AuthConfigError
from core.errors import LatticeError

MAX_FAILURES_ENV = "LATTICE_LOGIN_MAX_FAILURES"
LOCKOUT_ENV = "LATTICE_LOGIN_LOCKOUT_S"
DEFAULT_MAX_FAILURES = 5
DEFAULT_LOCKOUT_S = 60.0


class LoginLocked(LatticeError):
    """Too many failed log-ins for this user or this session; try again later."""

    def __init__(self, subject: str, retry_after: float):
        self.subject = subject
        self.retry_after = float(retry_after)
        super().__init__(f"too many failed log-ins for {subject}; try again in {math.ceil(self.retry_after)} s")


class LoginThrottle:
    """Failed log-ins counted per user and per session, with a lock-out period.

    After ``max_failures`` consecutive failures of one user name (any session) or of
    one session (any user name), further attempts for that user / from that session
    are refused for ``lockout_s`` seconds *without checking the password* (so guessing
    cannot continue during the lock-out). A successful log-in clears the user's and the
    session's counters; an expired lock-out starts a fresh count. Thread-safe; state is
    per process (one instance per server, see ``ui/auth.py``).

    Parameters
    ----------
    max_failures : int
        Failures allowed before the lock-out (>= 1). Default 5 or ``LATTICE_LOGIN_MAX_FAILURES``.
    lockout_s : float
        Lock-out length in seconds (> 0). Default 60 or ``LATTICE_LOGIN_LOCKOUT_S``.
    clock : callable
        Monotonic seconds (injectable for tests).
    """

    def __init__(self, max_failures: int | None = None, lockout_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        try:
            max_failures = int(max_failures if max_failures is not None
                               else env.get(MAX_FAILURES_ENV) or DEFAULT_MAX_FAILURES)
            lockout_s = float(lockout_s if lockout_s is not None else env.get(LOCKOUT_ENV) or DEFAULT_LOCKOUT_S)
        except (TypeError, ValueError):
            raise AuthConfigError(f"{MAX_FAILURES_ENV} must be an integer and {LOCKOUT_ENV} a number of "
                                  f"seconds") from None
        if max_failures < 1 or not math.isfinite(lockout_s) or lockout_s <= 0:
            raise AuthConfigError(f"login throttling: max failures must be >= 1 and the lock-out > 0 s "
                                  f"(got {max_failures}, {lockout_s})")
        self.max_failures, self.lockout_s, self._clock = max_failures, lockout_s, clock
        self._failures: dict[tuple[str, str], int] = {}
        self._locked_until: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str | None, session_id: str | None) -> list[tuple[str, str]]:
        keys = []
        if username:
            keys.append(("user", str(username).strip().lower()))
        if session_id:
            keys.append(("session", str(session_id)))
        return keys

    def _remaining_locked(self, key: tuple[str, str], now: float) -> float:
        until = self._locked_until.get(key)
        if until is None:
            return 0.0
        if now >= until:  # expired: a fresh count
            self._locked_until.pop(key, None)
            self._failures.pop(key, None)
            return 0.0
        return until - now

    def check(self, username: str | None, session_id: str | None) -> None:
        """Raise :class:`LoginLocked` if this user or this session is locked out now."""
        now = self._clock()
        with self._lock:
            for kind, value in self._keys(username, session_id):
                left = self._remaining_locked((kind, value), now)
                if left > 0:
                    subject = f"user {value!r}" if kind == "user" else "this browser session"
                    raise LoginLocked(subject, left)

    def retry_after(self, username: str | None, session_id: str | None) -> float:
        """Seconds until a locked user/session may try again (0 if not locked)."""
        now = self._clock()
        with self._lock:
            return max([self._remaining_locked(k, now) for k in self._keys(username, session_id)] or [0.0])

    def record_failure(self, username: str | None, session_id: str | None) -> float:
        """Count a failed attempt; returns the lock-out seconds now in force (0 if none)."""
        now = self._clock()
        locked = 0.0
        with self._lock:
            for key in self._keys(username, session_id):
                self._remaining_locked(key, now)
                n = self._failures.get(key, 0) + 1
                self._failures[key] = n
                if n >= self.max_failures:
                    self._locked_until[key] = now + self.lockout_s
                    locked = self.lockout_s
        return locked

    def failures_left(self, username: str | None, session_id: str | None) -> int:
        """Attempts left before a lock-out (the smaller of the user's and the session's)."""
        with self._lock:
            used = max([self._failures.get(k, 0) for k in self._keys(username, session_id)] or [0])
        return max(0, self.max_failures - used)

    def record_success(self, username: str | None, session_id: str | None) -> None:
        """A successful log-in clears the user's and the session's counters."""
        with self._lock:
            for key in self._keys(username, session_id):
                self._failures.pop(key, None)
                self._locked_until.pop(key, None)
