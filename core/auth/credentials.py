"""Users, passwords and roles for the workbench login (no UI here: no streamlit import).

The login form itself is streamlit-authenticator's (``ui/auth.py``); core.auth owns what is
not UI: this module the passwords, users and roles, core.auth.config the start-up configuration
(cookie key, the refuse-to-start check), core.auth.throttle the failed log-ins.

* the credentials file, ``.streamlit/credentials.yaml`` (never in git; see
  ``.streamlit/credentials.example.yaml``), in streamlit-authenticator's format::

      credentials:
        usernames:
          alice: {name: Alice, email: alice@example.org, password: <bcrypt hash>, roles: [researcher]}
      cookie: {name: gem_lattice_auth, expiry_days: 7}

  Passwords are always stored as bcrypt hashes; a plain-text password in the file
  is refused (``python -m core users add-user`` writes a hashed entry).
* demo mode (``LATTICE_DEMO=1``): users ``admin``, ``researcher`` and ``viewer``, each
  with the password ``demo``.
* the role lookup: a user's role is the first of their ``roles`` that is a
  :class:`~core.access.Role`; a user with none is a viewer (least privilege).
"""
from __future__ import annotations

import copy
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

import bcrypt
import yaml

from core.access import Actor, Permission, Role, require
from core.auth.settings import COOKIE_EXPIRY_DAYS, COOKIE_NAME, AuthConfigError, credentials_path, demo_mode

DEMO_PASSWORD = "demo"
DEMO_USERS: dict[str, Role] = {"admin": Role.ADMIN, "researcher": Role.RESEARCHER, "viewer": Role.VIEWER}

_BCRYPT = re.compile(r"^\$2[aby]\$\d{2}\$.{53}$")


# ----------------------------------------------------------------- passwords
def hash_password(password: str, rounds: int = 12) -> str:
    """bcrypt hash of ``password`` (the format streamlit-authenticator checks)."""
    if not isinstance(password, str) or not password:
        raise AuthConfigError("password: must be a non-empty string")
    if len(password.encode("utf-8", "surrogatepass")) > 72:
        raise AuthConfigError("password: at most 72 bytes (bcrypt's limit); choose a shorter one")
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


# ------------------------------------------------------------ users and files
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


def load_credentials_file(path: Path) -> tuple[dict, dict]:
    """Read a credentials YAML: returns ``(credentials, cookie settings)``, validated."""
    path = Path(path)
    if not path.exists():
        raise AuthConfigError(
            f"no credentials file at {path}. Create users with "
            f"`python -m core users add-user NAME --role researcher` (format: "
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
                f"passwords - set it with `python -m core users add-user {name} --role ...`"
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
    users = credentials.setdefault("usernames", {})
    old = users.get(username)
    # Replacing a user (a new password, a new role) bumps its token version: every re-login
    # cookie issued before is refused from then on (core.auth.sessions).
    version = int(old.get("token_version", 0) or 0) + 1 if isinstance(old, dict) else 0
    users[username] = {
        "name": name or username, "email": email or f"{username}@localhost",
        "password": hash_password(password), "roles": [role.value], "token_version": version,
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
