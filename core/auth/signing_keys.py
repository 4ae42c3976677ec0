"""The JWT signing key ring: Ed25519 keys (JWS ``EdDSA``) kept in the database, rotation, JWKS.

Keys live in the store (``jwt_signing_keys``) so that every API node signs and verifies with
the same ones. Exactly one key is *active* (new tokens are signed with it; its ``kid`` is in
each token's header); the database's unique ``active_slot`` makes a second active key
impossible, so two nodes that find no key at first use, or rotate at once, cannot both win.

Life of a key:

- **active**: signs new tokens, verifies.
- **previous**: superseded by a rotation less than ``window_s`` ago (the access-token lifetime
  plus the cache period and the clock leeway): it still verifies, so tokens it signed stay
  valid until they expire; it is still published in the JWKS.
- **expired**: superseded longer ago: no token it signed can still be valid; refused, and no
  longer published.
- **retired**: refused from the moment it is retired (``python -m core keys jwt-retire KID``),
  e.g. after a leak; the active key cannot be retired (rotate first).

Each node caches the ring for ``cache_s`` seconds (default 5): a rotation or retirement made by
another node is seen within that time; a token with a ``kid`` this node does not know yet
reloads the ring at once (the same unknown ``kid`` at most once a second; a refused token
writes its audit row anyway, so the extra read adds little to a flood of forged tokens).

Private keys at rest: encrypted with the store's cipher when ``LATTICE_ENCRYPTION_KEYS`` is
set (and re-encrypted by ``python -m core keys rotate``). Without it they are stored as plain
PEM text: anyone who can read the database (or a copy of it) can then sign tokens for any
user, so set ``LATTICE_ENCRYPTION_KEYS`` on any deployment that is not a local demo.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from core.access import Actor

ALGORITHM = "EdDSA"  # JWS algorithm of Ed25519 keys (RFC 8037)
DEFAULT_CACHE_S = 5.0
MIN_RELOAD_S = 1.0  # one unknown kid reloads the ring at most this often
MAX_UNKNOWN = 1000  # unknown kids remembered (then forgotten all at once)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(public_jwk: dict[str, Any]) -> bytes:
    """RFC 7638 thumbprint of an OKP key: the SHA-256 of its required members."""
    members = {k: public_jwk[k] for k in ("crv", "kty", "x")}
    return hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()


def new_ed25519_key() -> tuple[str, str, dict[str, Any]]:
    """A fresh Ed25519 key: ``(kid, private PKCS#8 PEM, public JWK)``; the kid is the first 16 hex
    digits of the key's RFC 7638 thumbprint (unique in practice, tied to the key, and safe to type
    on a command line: base64url could start with ``-``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    kid = thumbprint(jwk).hex()[:16]
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    return kid, pem, {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


@dataclass(frozen=True)
class SigningKey:
    """One key of the ring, parsed. Times in epoch seconds (UTC)."""

    kid: str
    alg: str
    public_jwk: dict[str, Any]
    active: bool
    created_by: str
    created_at: float
    superseded_at: float | None
    retired_at: float | None
    private_key: Any = field(repr=False, compare=False)  # cryptography's Ed25519PrivateKey
    public_key: Any = field(repr=False, compare=False)

    def state(self, now: float, window_s: float) -> str:
        """``active``, ``previous`` (still verifies), ``expired`` or ``retired`` (see the module doc)."""
        if self.retired_at is not None:
            return "retired"
        if self.active:
            return "active"
        if self.superseded_at is not None and now - self.superseded_at <= window_s:
            return "previous"
        return "expired"

    def to_dict(self, now: float, window_s: float) -> dict[str, Any]:
        """What ``keys jwt-list`` shows (never the private key)."""
        return {"kid": self.kid, "alg": self.alg, "state": self.state(now, window_s), "created_by": self.created_by,
                "created_at": self.created_at, "superseded_at": self.superseded_at, "retired_at": self.retired_at}


def _parse(record: Any) -> SigningKey:
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(record.private_pem.encode("ascii"), password=None)
    return SigningKey(record.kid, record.alg, dict(record.public_jwk), record.active, record.created_by,
                      record.created_at, record.superseded_at, record.retired_at, private, private.public_key())


class KeyRing:
    """The signing keys of one store, cached per process (thread-safe).

    Parameters
    ----------
    store : the :class:`core.store.Store` (its ``signing_keys`` / ``ensure_signing_key`` /
        ``add_signing_key`` / ``retire_signing_key``).
    window_s : float
        Seconds a superseded key keeps verifying: at least the access-token lifetime.
    cache_s : float
        Seconds the ring is cached before it is read again (another node's rotation is seen
        within this time).
    clock : callable
        Epoch seconds (injectable for tests).
    """

    def __init__(self, store: Any, *, window_s: float, cache_s: float = DEFAULT_CACHE_S,
                 clock: Callable[[], float] = time.time):
        self.store, self.window_s, self.cache_s, self.clock = store, float(window_s), float(cache_s), clock
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._loaded_at: float | None = None  # time.monotonic() of the last read
        self._parsed: dict[tuple[str, float | None, float | None, bool], SigningKey] = {}
        self._unknown: dict[str, float] = {}  # kid -> time.monotonic() of the reload that did not find it

    # ------------------------------------------------------------- loading
    def _load(self) -> None:
        keys = {}
        for record in self.store.signing_keys():
            stamp = (record.kid, record.superseded_at, record.retired_at, record.active)
            if stamp not in self._parsed:  # PEM parsing once per key and state, not every reload
                self._parsed[stamp] = _parse(record)
            keys[record.kid] = self._parsed[stamp]
        self._keys, self._loaded_at = keys, time.monotonic()

    def _fresh(self) -> dict[str, SigningKey]:
        with self._lock:
            if self._loaded_at is None or time.monotonic() - self._loaded_at > self.cache_s:
                self._load()
            return self._keys

    def _look_for(self, kid: str) -> SigningKey | None:
        """``kid`` after a reload (a rotation by another node), unless it was just looked for."""
        with self._lock:
            now = time.monotonic()
            if now - self._unknown.get(kid, float("-inf")) <= MIN_RELOAD_S:
                return None
            self._load()
            if kid not in self._keys:
                if len(self._unknown) >= MAX_UNKNOWN:
                    self._unknown.clear()
                self._unknown[kid] = now
            return self._keys.get(kid)

    def _reload_now(self) -> None:
        with self._lock:
            self._load()

    # ------------------------------------------------------------- reading
    def signing_key(self) -> SigningKey:
        """The active key; the first use on a database without one creates it (``jwt.create``)."""
        for key in self._fresh().values():
            if key.active:
                return key
        self._reload_now()  # another node may have just made one
        for key in self._keys.values():
            if key.active:
                return key
        kid, pem, jwk = new_ed25519_key()
        self.store.ensure_signing_key(kid, ALGORITHM, pem, jwk, self.clock())
        self._reload_now()  # ours, or the one of the node that won the race
        return next(k for k in self._keys.values() if k.active)

    def verifying_key(self, kid: str) -> tuple[SigningKey | None, str]:
        """The key for ``kid`` if it may verify now, else ``(None, reason)``: ``unknown_kid``,
        ``retired_kid`` or ``expired_kid``."""
        key = self._fresh().get(kid) or self._look_for(kid)
        if key is None:
            return None, "unknown_kid"
        state = key.state(self.clock(), self.window_s)
        if state in ("retired", "expired"):
            return None, f"{state}_kid"
        return key, ""

    def keys(self) -> list[SigningKey]:
        """Every key, newest first (read now, not from the cache)."""
        self._reload_now()
        return sorted(self._keys.values(), key=lambda k: k.created_at, reverse=True)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public keys that may verify now (active and previous): ``{"keys": [JWK, ...]}``."""
        self.signing_key()  # a JWKS is never empty
        now = self.clock()
        keys = sorted(self._fresh().values(), key=lambda k: k.created_at, reverse=True)
        return {"keys": [dict(k.public_jwk) for k in keys if k.state(now, self.window_s) in ("active", "previous")]}

    # ------------------------------------------------------------- changes
    def rotate(self, actor: Actor) -> str:
        """A new active key (admin only, audited ``jwt.rotate``); returns its kid. The previous
        key keeps verifying for ``window_s``. On a database without keys it makes the first one."""
        kid, pem, jwk = new_ed25519_key()
        self.store.add_signing_key(actor, kid, ALGORITHM, pem, jwk, self.clock())
        self._reload_now()
        return kid

    def retire(self, actor: Actor, kid: str) -> SigningKey:
        """Refuse ``kid`` from now on (admin only, audited ``jwt.retire``); not the active key."""
        self.store.retire_signing_key(actor, kid, self.clock())
        self._reload_now()
        return self._keys[kid]
