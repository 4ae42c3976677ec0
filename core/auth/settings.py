"""The login's settings: environment-variable names, cookie constants, demo mode, the credentials path.

The bottom of core.auth (imports nothing from it): credentials, the start-up configuration and
the login throttle all read these. :class:`AuthConfigError` is the error of the whole package.
"""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Mapping

from core.errors import LatticeError
from core.paths import ROOT

DEFAULT_CREDENTIALS_PATH = ROOT / ".streamlit" / "credentials.yaml"
DEMO_ENV = "LATTICE_DEMO"
COOKIE_KEY_ENV = "LATTICE_COOKIE_KEY"
CREDENTIALS_ENV = "LATTICE_CREDENTIALS"
COOKIE_NAME = "gem_lattice_auth"
COOKIE_EXPIRY_DAYS = 7.0
MIN_COOKIE_KEY_LENGTH = 32
BIND_ENV = "LATTICE_BIND"
"""The address ``make run`` binds (default ``127.0.0.1``: this machine only); ``0.0.0.0`` = every interface."""

EXAMPLE_COOKIE_KEY = "CHANGE-ME-this-is-the-example-cookie-key-not-a-secret"
"""The placeholder in ``.streamlit/secrets.toml.example``: refused outside demo mode."""


class AuthConfigError(LatticeError):
    """The login cannot be configured safely (missing key, example key, demo users...)."""


def demo_mode(env: Mapping[str, str] | None = None) -> bool:
    """True when ``LATTICE_DEMO`` is ``1``/``true``/``yes``."""
    env = os.environ if env is None else env
    return str(env.get(DEMO_ENV, "")).strip().lower() in {"1", "true", "yes", "on"}


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get(CREDENTIALS_ENV) or DEFAULT_CREDENTIALS_PATH)


def is_loopback(address: str | None) -> bool:
    """True for an address only this machine can reach (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    text = str(address or "").strip().strip("[]").lower()
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False
