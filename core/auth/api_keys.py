"""Programs' API keys: ``glk_<id>_<secret>``, shown once, stored hashed, revocable.

An admin creates a key for a program with a role (``python -m core apikeys create NAME
--role researcher``); the program exchanges it for a short-lived access token
(:meth:`core.auth.tokens.TokenService.issue_for_api_key`). The key is printed once and never
stored: the database keeps its SHA-256. A fast, unsalted hash is right here because the
secret is 32 random bytes (256 bits) from :mod:`secrets`: nobody can guess it or search for
it in a table, which is what salts and slow hashes (bcrypt, for passwords people choose)
defend against, while a cheap hash keeps every token request fast. The ``id`` is public (it
names the key in lists, audit rows and the token's subject ``key:<id>``).

Revoking a key refuses it from then on, together with every refresh token it was given;
access tokens it already has are refused within the token service's cache period (~5 s).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from core.access import Actor, Role
from core.errors import ValidationError

PREFIX = "glk_"
_KEY = re.compile(r"glk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")  # 6 random bytes of id, 32 of secret
MAX_NAME = 100


@dataclass(frozen=True)
class NewApiKey:
    """A key just created: ``key`` is the secret, shown this once."""

    id: str
    name: str
    role: str
    key: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "key": self.key, "created_at": self.created_at}


def hash_key(key: str) -> str:
    """SHA-256 (hex) of a whole key string: what the database stores."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_key(key: Any) -> str | None:
    """The id of a well-formed ``glk_<id>_<secret>`` key, else None."""
    match = _KEY.fullmatch(key) if isinstance(key, str) else None
    return match.group(1) if match else None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name", "an API key needs a name (what program uses it), e.g. 'nightly-import'")
    name = unicodedata.normalize("NFC", name.strip())
    if len(name) > MAX_NAME or any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValidationError("name", f"at most {MAX_NAME} printable characters, got {name[:MAX_NAME]!r}...")
    return name


def create_api_key(store: Any, actor: Actor, name: str, role: Role | str, *, now: float | None = None) -> NewApiKey:
    """A new key for a program (admin only, audited ``apikey.create``); the secret is in the result only."""
    name = _check_name(name)
    try:
        role = Role(role)
    except ValueError:
        raise ValidationError("role", f"{role!r}; use one of {', '.join(r.value for r in Role)}") from None
    key_id = secrets.token_hex(6)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = store.add_api_key(actor, key_id, name, role.value, hash_key(key), time.time() if now is None else now)
    return NewApiKey(record.id, record.name, record.role, key, record.created_at)


def list_api_keys(store: Any) -> list[dict[str, Any]]:
    """Every key (revoked ones too), newest first, without secrets or hashes."""
    return [r.to_dict() for r in store.api_keys()]


def revoke_api_key(store: Any, actor: Actor, key_id: str, *, now: float | None = None) -> dict[str, Any]:
    """Revoke a key and its refresh tokens (admin only, audited ``apikey.revoke``); returns the key."""
    return store.revoke_api_key(actor, str(key_id), time.time() if now is None else now).to_dict()


def check_api_key(store: Any, key: Any) -> tuple[Any, str]:
    """``(record, "")`` for a live key, else ``(None, reason)``: ``malformed``, ``unknown`` (no
    such key, or a wrong secret: one answer, so the id alone tells nothing) or ``revoked``."""
    key_id = parse_key(key)
    if key_id is None:
        return None, "malformed"
    record = store.api_key(key_id)
    if record is None or not hmac.compare_digest(record.secret_hash, hash_key(key)):
        return None, "unknown"
    if record.revoked_at is not None:
        return None, "revoked"
    return record, ""
