"""The start-up configuration of the login: users, cookie settings, demo mode; or a refusal.

Outside demo mode the workbench refuses to start with a missing or example cookie key, a
missing credentials file, or any user whose password is ``demo`` (:class:`AuthConfigError`,
with what to change). The cookie-signing key is ``cookie_key`` in ``.streamlit/secrets.toml``
or the environment variable ``LATTICE_COOKIE_KEY``; demo mode (``LATTICE_DEMO=1``) gets a
per-process random key if none is set.
"""
from __future__ import annotations

import copy
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from core.access import Actor
from core.auth.credentials import DEMO_PASSWORD, actor_for, demo_credentials, load_credentials_file, verify_password
from core.auth.settings import (COOKIE_EXPIRY_DAYS, COOKIE_KEY_ENV, COOKIE_NAME, DEMO_ENV, EXAMPLE_COOKIE_KEY,
                                MIN_COOKIE_KEY_LENGTH, AuthConfigError, credentials_path, demo_mode)


@lru_cache(maxsize=1)
def _process_cookie_key() -> str:
    return secrets.token_urlsafe(48)


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


def _checked_credentials(env: Mapping[str, str], path: Path | None, problems: list[str]) -> tuple[dict, dict]:
    """The credentials file's users and cookie section; what is wrong with them goes to ``problems``."""
    creds_path = Path(path) if path is not None else credentials_path(env)
    try:
        credentials, cookie = load_credentials_file(creds_path)
    except AuthConfigError as exc:
        problems.append(str(exc))
        return {}, {}
    demo_users = _demo_users_in(credentials) if credentials else []
    if demo_users:
        problems.append(f"user(s) {', '.join(demo_users)} have the public demo password 'demo'; "
                        f"change it with `python -m core users add-user NAME --role ...`")
    return credentials, cookie


def _refuse_if(problems: list[str]) -> None:
    if problems:
        raise AuthConfigError("the workbench refuses to start outside demo mode: " + "; ".join(problems)
                              + f". (For a local demo, set {DEMO_ENV}=1.)")


def check_api_credentials(env: Mapping[str, str] | None = None, path: Path | None = None) -> None:
    """The API server's start-up check (it has no cookie): outside demo mode, refuse with
    :class:`AuthConfigError` a missing credentials file or users with the public demo password."""
    env = os.environ if env is None else env
    if not demo_mode(env):
        problems: list[str] = []
        _checked_credentials(env, path, problems)
        _refuse_if(problems)


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
    credentials, cookie = _checked_credentials(env, path, problems)
    _refuse_if(problems)
    return AuthConfig(credentials, str(cookie.get("name") or COOKIE_NAME), key,
                      float(cookie.get("expiry_days", COOKIE_EXPIRY_DAYS)), demo=False)
