"""Users, passwords and roles for the workbench login (no UI here: no streamlit import).

The login form itself is streamlit-authenticator's (``ui/auth.py``); this module owns
everything that is not UI:

* the credentials file, ``.streamlit/credentials.yaml`` (never in git; see
  ``.streamlit/credentials.example.yaml``), in streamlit-authenticator's format::

      credentials:
        usernames:
          alice: {name: Alice, email: alice@example.org, password: <bcrypt hash>, roles: [researcher]}
      cookie: {name: gem_lattice_auth, expiry_days: 7}

  Passwords are always stored as bcrypt hashes; a plain-text password in the file
  is refused (``python -m core.auth.credentials add-user`` writes a hashed entry).
* the cookie-signing key: ``cookie_key`` in ``.streamlit/secrets.toml`` or the
  environment variable ``LATTICE_COOKIE_KEY``.
* demo mode (``LATTICE_DEMO=1``): users ``admin``, ``researcher`` and ``viewer``, each
  with the password ``demo``, and a per-process random cookie key if none is set.
* the start-up check: outside demo mode the workbench refuses to start with a
  missing or example cookie key, a missing credentials file, or any user whose
  password is ``demo`` (:class:`AuthConfigError`, with what to change).
* the role lookup: a user's role is the first of their ``roles`` that is a
  :class:`~core.access.Role`; a user with none is a viewer (least privilege).
"""
from __future__ import annotations

import argparse
import copy
import getpass
import math
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

import bcrypt
import yaml

from core.access import Actor, Permission, Role, require
from core.errors import LatticeError
from core.paths import ROOT

DEFAULT_CREDENTIALS_PATH = ROOT / ".streamlit" / "credentials.yaml"
DEMO_ENV = "LATTICE_DEMO"
COOKIE_KEY_ENV = "LATTICE_COOKIE_KEY"
CREDENTIALS_ENV = "LATTICE_CREDENTIALS"
COOKIE_NAME = "gem_lattice_auth"
COOKIE_EXPIRY_DAYS = 7.0
MIN_COOKIE_KEY_LENGTH = 32

EXAMPLE_COOKIE_KEY = "CHANGE-ME-this-is-the-example-cookie-key-not-a-secret"
"""The placeholder in ``.streamlit/secrets.toml.example``: refused outside demo mode."""
DEMO_PASSWORD = "demo"
DEMO_USERS: dict[str, Role] = {"admin": Role.ADMIN, "researcher": Role.RESEARCHER, "viewer": Role.VIEWER}

_BCRYPT = re.compile(r"^\$2[aby]\$\d{2}\$.{53}$")


class AuthConfigError(LatticeError):
    """The login cannot be configured safely (missing key, example key, demo users...)."""


# ----------------------------------------------------------------- passwords
def hash_password(password: str, rounds: int = 12) -> str:
    """bcrypt hash of ``password`` (the format streamlit-authenticator checks)."""
    if not isinstance(password, str) or not password:
        raise AuthConfigError("password: must be a non-empty string")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def is_hash(value: Any) -> bool:
    return isinstance(value, str) and bool(_BCRYPT.match(value))


def verify_password(password: str, hashed: str) -> bool:
    """True if ``password`` matches the bcrypt ``hashed`` (False for a malformed hash)."""
    if not is_hash(hashed):
        return False
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:
        return False


# ------------------------------------------------------------------ settings
def demo_mode(env: Mapping[str, str] | None = None) -> bool:
    """True when ``LATTICE_DEMO`` is ``1``/``true``/``yes``."""
    env = os.environ if env is None else env
    return str(env.get(DEMO_ENV, "")).strip().lower() in {"1", "true", "yes", "on"}


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(CREDENTIALS_ENV) or DEFAULT_CREDENTIALS_PATH)


@lru_cache(maxsize=1)
def _demo_credentials_hashed() -> dict:
    # Hashed once per process (bcrypt is deliberately slow); callers get deep copies.
    return {"usernames": {
        name: {"name": f"Demo {name}", "email": f"{name}@demo.invalid",
               "password": hash_password(DEMO_PASSWORD), "roles": [role.value]}
        for name, role in DEMO_USERS.items()
    }}


def demo_credentials() -> dict:
    """The demo users (``admin``/``researcher``/``viewer``, password ``demo``), hashed."""
    return copy.deepcopy(_demo_credentials_hashed())


@lru_cache(maxsize=1)
def _process_cookie_key() -> str:
    return secrets.token_urlsafe(48)


def load_credentials_file(path: Path) -> tuple[dict, dict]:
    """Read a credentials YAML: returns ``(credentials, cookie settings)``, validated."""
    path = Path(path)
    if not path.exists():
        raise AuthConfigError(
            f"no credentials file at {path}. Create users with "
            f"`python -m core.auth.credentials add-user NAME --role researcher` (format: "
            f".streamlit/credentials.example.yaml), or run in demo mode with LATTICE_DEMO=1"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise AuthConfigError(f"{path} is not valid YAML: {exc}") from None
    creds = data.get("credentials") if isinstance(data, dict) else None
    users = creds.get("usernames") if isinstance(creds, dict) else None
    if not isinstance(users, dict) or not users:
        raise AuthConfigError(f"{path}: expected credentials.usernames with at least one user")
    for name, user in users.items():
        if not isinstance(user, dict):
            raise AuthConfigError(f"{path}: user {name!r} must be a mapping with name, password, roles")
        if not is_hash(user.get("password")):
            raise AuthConfigError(
                f"{path}: the password of user {name!r} is not a bcrypt hash; never store plain "
                f"passwords - set it with `python -m core.auth.credentials add-user {name} --role ...`"
            )
        roles = user.get("roles") or []
        if isinstance(roles, str):
            user["roles"] = [roles]
    cookie = data.get("cookie") if isinstance(data.get("cookie"), dict) else {}
    return {"usernames": {str(k).lower(): v for k, v in users.items()}}, cookie


def save_credentials_file(path: Path, credentials: dict, cookie: Mapping[str, Any] | None = None) -> None:
    """Write credentials (hashes only) atomically, readable by the owner only."""
    for name, user in credentials.get("usernames", {}).items():
        if not is_hash(user.get("password")):
            raise AuthConfigError(f"user {name!r}: refusing to write a password that is not a bcrypt hash")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"credentials": credentials,
            "cookie": dict(cookie or {"name": COOKIE_NAME, "expiry_days": COOKIE_EXPIRY_DAYS})}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(body, sort_keys=True, allow_unicode=True), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def add_user(credentials: dict, username: str, password: str, role: Role | str,
             name: str | None = None, email: str | None = None) -> dict:
    """Add or replace ``username`` with a bcrypt-hashed password; returns ``credentials``."""
    username = username.strip().lower()
    if not re.fullmatch(r"[a-z0-9_.@-]{1,64}", username):
        raise AuthConfigError(f"username: {username!r} may only use a-z, 0-9 and _ . @ -")
    if password == DEMO_PASSWORD:
        raise AuthConfigError("password: 'demo' is the public demo password; choose another")
    role = Role(role)
    credentials.setdefault("usernames", {})[username] = {
        "name": name or username, "email": email or f"{username}@localhost",
        "password": hash_password(password), "roles": [role.value],
    }
    return credentials


def role_of(credentials: Mapping[str, Any], username: str | None) -> Role | None:
    """The role of ``username`` (None if unknown): first valid entry of ``roles``, else viewer."""
    if not username:
        return None
    user = credentials.get("usernames", {}).get(str(username).lower())
    if user is None:
        return None
    roles = user.get("roles") or []
    for value in ([roles] if isinstance(roles, str) else roles):
        try:
            return Role(str(value).lower())
        except ValueError:
            continue
    return Role.VIEWER


def actor_for(credentials: Mapping[str, Any], username: str | None) -> Actor | None:
    role = role_of(credentials, username)
    return None if role is None else Actor(str(username).lower(), role)


# ------------------------------------------------------------- configuration
@dataclass(frozen=True)
class AuthConfig:
    """What the login needs: users (hashed), cookie settings, and whether this is a demo."""

    credentials: dict
    cookie_name: str
    cookie_key: str
    cookie_expiry_days: float
    demo: bool

    def fresh_credentials(self) -> dict:
        """A deep copy (streamlit-authenticator mutates the dict it is given)."""
        return copy.deepcopy(self.credentials)

    def actor(self, username: str | None) -> Actor | None:
        return actor_for(self.credentials, username)


def _demo_users_in(credentials: Mapping[str, Any]) -> list[str]:
    """Users whose password is the public demo password (bcrypt-checked, slow by design)."""
    return sorted(name for name, user in credentials.get("usernames", {}).items()
                  if verify_password(DEMO_PASSWORD, str(user.get("password", ""))))


def load_auth_config(cookie_key: str | None = None, env: Mapping[str, str] | None = None,
                     path: Path | None = None) -> AuthConfig:
    """Assemble the login configuration, or refuse with :class:`AuthConfigError`.

    Parameters
    ----------
    cookie_key : the key from ``secrets.toml`` (``cookie_key``), if any; the
        environment variable ``LATTICE_COOKIE_KEY`` takes precedence.
    env : environment (default ``os.environ``).
    path : credentials file (default ``LATTICE_CREDENTIALS`` or ``.streamlit/credentials.yaml``).
    """
    env = os.environ if env is None else env
    key = (env.get(COOKIE_KEY_ENV) or cookie_key or "").strip()
    if demo_mode(env):
        return AuthConfig(demo_credentials(), COOKIE_NAME, key or _process_cookie_key(),
                          COOKIE_EXPIRY_DAYS, demo=True)
    problems = []
    if not key:
        problems.append(f"no cookie key: set cookie_key in .streamlit/secrets.toml or {COOKIE_KEY_ENV} "
                        f"(for example `python -c \"import secrets; print(secrets.token_urlsafe(48))\"`)")
    elif key == EXAMPLE_COOKIE_KEY or "change-me" in key.lower():
        problems.append("the cookie key is the example key from secrets.toml.example; "
                        "generate a real one (`python -c \"import secrets; print(secrets.token_urlsafe(48))\"`)")
    elif len(key) < MIN_COOKIE_KEY_LENGTH:
        problems.append(f"the cookie key is too short ({len(key)} characters; use at least {MIN_COOKIE_KEY_LENGTH})")
    creds_path = Path(path) if path is not None else credentials_path(env)
    try:
        credentials, cookie = load_credentials_file(creds_path)
    except AuthConfigError as exc:
        problems.append(str(exc))
        credentials, cookie = {}, {}
    if credentials:
        demo_users = _demo_users_in(credentials)
        if demo_users:
            problems.append(f"user(s) {', '.join(demo_users)} have the public demo password 'demo'; "
                            f"change it with `python -m core.auth.credentials add-user NAME --role ...`")
    if problems:
        raise AuthConfigError("the workbench refuses to start outside demo mode: " + "; ".join(problems)
                              + f". (For a local demo, set {DEMO_ENV}=1.)")
    return AuthConfig(credentials, str(cookie.get("name") or COOKIE_NAME), key,
                      float(cookie.get("expiry_days", COOKIE_EXPIRY_DAYS)), demo=False)


# --------------------------------------------------------- login throttling
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


# ------------------------------------------------------------ user management
def add_user_to_file(actor: Actor, username: str, password: str, role: Role | str, name: str | None = None,
                     email: str | None = None, path: Path | None = None,
                     audit: Callable[..., None] | None = None) -> Path:
    """Add or replace a user (bcrypt-hashed) in the credentials file; admin only.

    Refused in demo mode (the demo users are fixed). Nothing is written on any error.
    ``audit`` (e.g. ``Store.audit``) is called afterwards as
    ``audit(actor, "user.create" | "user.update", username, {"role": ...})``.
    """
    require(actor, Permission.ADMIN, "manage users")
    if demo_mode():
        raise AuthConfigError("demo mode has fixed users (admin, researcher, viewer); user management needs a "
                              "credentials file (run without LATTICE_DEMO=1)")
    path = Path(path) if path is not None else credentials_path()
    credentials, cookie = load_credentials_file(path) if path.exists() else ({"usernames": {}}, None)
    existed = str(username).strip().lower() in credentials["usernames"]
    add_user(credentials, username, password, role, name, email)
    save_credentials_file(path, credentials, cookie)
    if audit is not None:
        audit(actor, "user.update" if existed else "user.create", str(username).strip().lower(),
              {"role": Role(role).value})
    return path


def list_users(path: Path | None = None) -> list[dict[str, str]]:
    """User names, display names and roles of the credentials file (never the hashes)."""
    path = Path(path) if path is not None else credentials_path()
    if not path.exists():
        return []
    credentials, _ = load_credentials_file(path)
    return [{"username": u, "name": str(d.get("name", "")), "role": (role_of(credentials, u) or Role.VIEWER).value}
            for u, d in sorted(credentials["usernames"].items())]


# ---------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m core.auth.credentials add-user NAME --role ROLE`` / ``python -m core.auth.credentials hash``."""
    parser = argparse.ArgumentParser(prog="python -m core.auth.credentials", description=main.__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    add = sub.add_parser("add-user", help="add or replace a user in the credentials file")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--name")
    add.add_argument("--email")
    add.add_argument("--file", type=Path, default=None, help="credentials file (default .streamlit/credentials.yaml)")
    sub.add_parser("hash", help="print the bcrypt hash of a password read from the terminal")
    args = parser.parse_args(argv)
    try:
        password = getpass.getpass("password: ")
        if args.cmd == "hash":
            print(hash_password(password))
            return 0
        if password != getpass.getpass("again: "):
            raise AuthConfigError("the passwords differ")
        path = args.file or credentials_path()
        credentials, cookie = load_credentials_file(path) if path.exists() else ({"usernames": {}}, None)
        add_user(credentials, args.username, password, args.role, args.name, args.email)
        save_credentials_file(path, credentials, cookie)
        print(f"user {args.username!r} ({args.role}) written to {path}")
        return 0
    except LatticeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
