"""Who a token speaks for, now: the users' credentials as the app loads them, and a short cache
of each subject's current role (a user's from the credentials, an API key's from the store).

:class:`CredentialsSource` is the token service's default ``credentials``: the demo users in
demo mode (``LATTICE_DEMO=1``), else the credentials file (``LATTICE_CREDENTIALS`` or
``.streamlit/credentials.yaml``), read again whenever it changes on disk, so a user added,
removed or given another role with ``python -m core users add-user`` counts without a restart.

:class:`SubjectRoles` answers "what is this subject's role now (None: gone)?" for every
verified token, from a cache of ``cache_s`` seconds (default 5): a removed user, a changed role
or a revoked API key is refused within that time, and a verification costs no database read
or file stat most of the time.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from core.auth.credentials import demo_credentials, load_credentials_file, role_of
from core.auth.settings import credentials_path, demo_mode

KEY_SUBJECT = "key:"  # an API key's subject: key:<id>
MAX_CACHED = 10_000  # subjects kept; the cache is emptied beyond (a bound, not an LRU: it refills in 5 s)


class CredentialsSource:
    """The login's credentials mapping, as the app has it (see the module docstring)."""

    def __init__(self, path: Path | None = None, env: Mapping[str, str] | None = None):
        self._path, self._env = path, env
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._credentials: dict[str, Any] = {}

    def __call__(self) -> dict[str, Any]:
        if demo_mode(self._env):
            return demo_credentials()
        path = Path(self._path) if self._path is not None else credentials_path(self._env)
        with self._lock:
            try:
                st = path.stat()
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            except OSError:
                stamp = None
            if stamp is None or stamp != self._stamp:
                self._credentials = load_credentials_file(path)[0]  # AuthConfigError if missing or invalid
                self._stamp = stamp
            return self._credentials


class SubjectRoles:
    """The current role of a token's subject, cached for ``cache_s`` seconds (thread-safe)."""

    def __init__(self, store: Any, credentials: Callable[[], Mapping[str, Any]], cache_s: float = 5.0):
        self.store, self.credentials, self.cache_s = store, credentials, float(cache_s)
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str | None, float]] = {}

    def user_role(self, name: str) -> str | None:
        """A user's role now (from the credentials, not cached), None if there is no such user."""
        role = role_of(self.credentials(), name)
        return None if role is None else role.value

    def _lookup(self, subject: str) -> str | None:
        if subject.startswith(KEY_SUBJECT):
            record = self.store.api_key(subject[len(KEY_SUBJECT):])
            return None if record is None or record.revoked_at is not None else record.role
        return self.user_role(subject)

    def role(self, subject: str) -> str | None:
        """``subject``'s role, at most ``cache_s`` seconds old."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(subject)
        if hit is not None and now - hit[1] <= self.cache_s:
            return hit[0]
        role = self._lookup(subject)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[subject] = (role, now)
        return role

    def forget(self, subject: str) -> None:
        """Drop one subject from the cache (after a change made by this process)."""
        with self._lock:
            self._cache.pop(subject, None)
