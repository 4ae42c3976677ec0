"""Log-in sessions: the password check and the signed re-login cookie, revocable server-side.

*Password check* (:func:`check_login`): always exactly one bcrypt check, against the user's
hash or, for an unknown user name, against a dummy hash of the same cost, so a failed log-in
takes as long for a user that exists as for one that does not (no user enumeration by timing).

*Cookie* (:func:`issue_cookie_token`, :func:`verify_cookie_token`): an HS256 JWT with the user
name, its expiry (``exp_date``, the format streamlit-authenticator writes), a random session id
(``jti``) and the user's ``token_version`` (``ver``, from the credentials file; bumped when the
user is replaced, e.g. a password change). A cookie is accepted only if its signature, expiry,
user, version and session id are all good and the session id is not in the
:class:`RevocationList`: "Log out" revokes the session id until the cookie would have expired,
so a copy of the cookie taken before the log-out is refused afterwards.

*Revocation list*: a JSON file ``{jti: expiry}`` next to the credentials file
(``credentials.revoked.json``, or ``LATTICE_REVOKED_SESSIONS``; in demo mode in the
temporary directory), written atomically under a
lock file, re-read when its modification time changes. Several app processes on one machine
share it; several machines share it only if the path is on a shared file system (like the
credentials file itself, which every node needs anyway). A damaged file refuses every cookie
(fail closed: users log in with their password again).
"""
from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import bcrypt

from core.auth.settings import credentials_path, demo_mode

REVOKED_ENV = "LATTICE_REVOKED_SESSIONS"
_DEFAULT_COST = 12


# ------------------------------------------------------------------ passwords
@lru_cache(maxsize=8)
def _dummy_hash(cost: int) -> bytes:
    return bcrypt.hashpw(secrets.token_bytes(16).hex().encode(), bcrypt.gensalt(cost))


def _cost_of(hashed: str) -> int:
    try:
        cost = int(str(hashed).split("$")[2])
    except (IndexError, ValueError):
        return _DEFAULT_COST
    return cost if 4 <= cost <= 31 else _DEFAULT_COST


def _typical_cost(credentials: Mapping[str, Any]) -> int:
    for user in credentials.get("usernames", {}).values():
        if isinstance(user, Mapping) and user.get("password"):
            return _cost_of(user["password"])
    return _DEFAULT_COST


def check_login(credentials: Mapping[str, Any], username: str | None, password: str | None) -> bool:
    """True if ``password`` is ``username``'s; one bcrypt check whether the user exists or not."""
    name = str(username or "").strip().lower()
    user = credentials.get("usernames", {}).get(name) if name else None
    stored = str(user.get("password", "")) if isinstance(user, Mapping) else ""
    secret = str(password or "").encode("utf-8", "surrogatepass")
    too_long = len(secret) > 72  # bcrypt's limit: no stored password is longer (hash_password refuses them)
    hashed = stored.encode() if stored.startswith("$2") and not too_long else b""
    try:
        ok = bcrypt.checkpw(secret[:72], hashed or _dummy_hash(_typical_cost(credentials)))
    except ValueError:  # a malformed stored hash: still one check, on the dummy
        bcrypt.checkpw(secret[:72], _dummy_hash(_typical_cost(credentials)))
        return False
    return bool(ok and hashed)


# ------------------------------------------------------------------- cookies
def token_version(credentials: Mapping[str, Any], username: str) -> int | None:
    """The user's current cookie version (0 if never bumped); None for an unknown user."""
    user = credentials.get("usernames", {}).get(str(username).lower())
    if not isinstance(user, Mapping):
        return None
    try:
        return int(user.get("token_version", 0) or 0)
    except (TypeError, ValueError):
        return 0


def issue_cookie_token(credentials: Mapping[str, Any], username: str, key: str, expiry_days: float,
                       now: float | None = None) -> tuple[str, dict]:
    """A new signed re-login token for ``username`` (a new session id); returns ``(token, payload)``."""
    import jwt  # PyJWT pulls in cryptography (~0.15 s): only where a cookie is made or read
    now = time.time() if now is None else now
    payload = {"username": str(username).lower(), "exp_date": now + float(expiry_days) * 86400.0,
               "jti": secrets.token_hex(16), "ver": token_version(credentials, username) or 0}
    return jwt.encode(payload, key, algorithm="HS256"), payload


def verify_cookie_token(token: str | None, key: str, credentials: Mapping[str, Any],
                        revocations: "RevocationList", now: float | None = None) -> dict | None:
    """The token's payload if it is a live, unrevoked session of a known user; else None."""
    if not token or not isinstance(token, str) or len(token) > 4096:
        return None
    import jwt
    try:
        payload = jwt.decode(token, key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    if not isinstance(payload, dict):
        return None
    username, jti, ver, exp = (payload.get(k) for k in ("username", "jti", "ver", "exp_date"))
    if not isinstance(username, str) or not isinstance(jti, str) or len(jti) < 16 or not isinstance(ver, int):
        return None  # includes cookies of the old format (no session id: they could not be revoked)
    try:
        exp = float(exp)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(exp) or exp <= (time.time() if now is None else now):
        return None
    if token_version(credentials, username) != ver or revocations.is_revoked(jti):
        return None
    return payload


# -------------------------------------------------------------- revocations
def revocations_path(env: Mapping[str, str] | None = None) -> Path:
    """``LATTICE_REVOKED_SESSIONS``, or ``<credentials file stem>.revoked.json`` beside it.

    Demo mode (fixed users, no credentials file, one machine) keeps it in the temporary directory.
    """
    env = os.environ if env is None else env
    if env.get(REVOKED_ENV):
        return Path(env[REVOKED_ENV])
    if demo_mode(env):
        uid = os.getuid() if hasattr(os, "getuid") else 0
        return Path(tempfile.gettempdir()) / f"gem-lattice-demo-{uid}.revoked.json"
    creds = credentials_path(env)
    return creds.with_name(creds.stem + ".revoked.json")


class RevocationList:
    """Revoked session ids until their cookies expire, in a JSON file shared by the app processes."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else revocations_path()
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._entries: dict[str, float] | None = {}

    def _read(self) -> dict[str, float] | None:
        """The entries (None if the file is damaged); cached by modification time and size."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._entries = None, {}
            return self._entries
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._seen:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                entries = {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else None
            except (OSError, ValueError, TypeError):
                entries = None
            self._seen, self._entries = stamp, entries
        return self._entries

    def is_revoked(self, jti: str) -> bool:
        with self._lock:
            entries = self._read()
        if entries is None:
            return True  # damaged: fail closed
        until = entries.get(jti)
        return until is not None and until > time.time()

    def revoke(self, jti: str, until: float) -> None:
        """Record ``jti`` as logged out until ``until`` (its cookie's expiry); prunes expired ids."""
        now = time.time()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with self._lock, open(lock_path, "a+") as lock:
            try:
                import fcntl
                fcntl.flock(lock, fcntl.LOCK_EX)
            except ImportError:  # not POSIX: the thread lock only
                pass
            self._seen = None
            entries = self._read() or {}  # a damaged file is replaced by a good one
            entries = {k: v for k, v in entries.items() if v > now}
            if until > now:
                entries[str(jti)] = float(until)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entries), encoding="utf-8")
            os.chmod(tmp, 0o600)
            tmp.replace(self.path)
            self._seen = None
