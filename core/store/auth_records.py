"""The API auth's records: JWT signing keys, programs' API keys, refresh tokens (migration 0006).

Reads and writes only; the rules live in core.auth (tokens, signing_keys, api_keys), which
calls these. Every method is one transaction, and every change that matters for security
writes its audit row in that same transaction (so a change is never without its trail, and a
refusal writes nothing but its audit row).

Private signing keys are encrypted with the store's cipher (``LATTICE_ENCRYPTION_KEYS``, see
core.store.crypto) when it has keys, and re-encrypted by ``keys rotate`` like gem content;
without keys they are stored as plain PEM text, readable by whoever can read the database.

SQLite note: a write transaction starts with its write (UPDATE/INSERT), never with a SELECT, so
it takes the write lock at once (waiting on the busy timeout) instead of failing to upgrade a
read snapshot.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.access import SYSTEM, Actor, Role
from core.errors import LatticeError, ValidationError
from core.store.errors import ConflictError, NotFoundError
from core.store.kernel import StoreKernel
from core.store.tables import API_KEYS, REFRESH_TOKENS, SIGNING_KEYS

ANONYMOUS = Actor("anonymous", Role.VIEWER)
"""The actor of an audit row for a request nobody could be identified for (a refused token)."""


@dataclass(frozen=True)
class SigningKeyRecord:
    """A stored signing key; ``private_pem`` decrypted. Times in epoch seconds (UTC)."""

    kid: str
    alg: str
    public_jwk: dict[str, Any]
    private_pem: str = field(repr=False)
    active: bool
    created_by: str
    created_at: float
    superseded_at: float | None
    retired_at: float | None


@dataclass(frozen=True)
class ApiKeyRecord:
    """A program's API key as stored (``secret_hash``: SHA-256 hex of the whole key)."""

    id: str
    name: str
    role: str
    created_by: str
    created_at: float
    revoked_at: float | None
    last_used_at: float | None
    secret_hash: str = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Every field but the hash (what ``apikeys list`` shows)."""
        out = asdict(self)
        out.pop("secret_hash")
        return out


@dataclass(frozen=True)
class RefreshGrant:
    """The outcome of exchanging a refresh token: ``refused`` is None or a short reason
    (``unknown``, ``expired``, ``ended``, ``reused``, ``subject``); the rest describes the family."""

    refused: str | None
    subject: str = ""
    role: str = ""
    audience: tuple[str, ...] = ()
    family_id: str = ""


class _Clash(LatticeError):
    """A unique constraint refused a write (another node got there first); nothing was written."""


class AuthRecordsMixin(StoreKernel):
    """Signing keys, API keys and refresh tokens; audited in the same transaction."""

    @contextmanager
    def _auth_tx(self) -> Iterator[Connection]:
        """The kernel's write transaction, where a unique-constraint clash is :class:`_Clash` (the
        caller decides what it means) instead of a generic database error; rolled back either way."""
        with self._tx() as conn:
            try:
                yield conn
            except IntegrityError:
                raise _Clash("a concurrent change won; nothing was written") from None

    # ------------------------------------------------------------ signing keys
    def _key_record(self, row: Any) -> SigningKeyRecord:
        return SigningKeyRecord(row.kid, row.alg, dict(row.public_jwk), self.cipher.decrypt(row.private_key) or "",
                                row.active_slot == 1, row.created_by, row.created_at, row.superseded_at,
                                row.retired_at)

    def signing_keys(self) -> list[SigningKeyRecord]:
        """Every signing key, newest first (retired ones too), private keys decrypted."""
        with self._read() as conn:
            rows = conn.execute(select(SIGNING_KEYS).order_by(SIGNING_KEYS.c.created_at.desc())).all()
        return [self._key_record(r) for r in rows]

    def _insert_signing_key(self, conn: Connection, actor: Actor, kid: str, alg: str, private_pem: str,
                            public_jwk: dict[str, Any], now: float) -> None:
        conn.execute(insert(SIGNING_KEYS).values(kid=kid, alg=alg, public_jwk=public_jwk,
                                                 private_key=self.cipher.encrypt(private_pem), active_slot=1,
                                                 created_by=actor.name, created_at=float(now)))

    def ensure_signing_key(self, kid: str, alg: str, private_pem: str, public_jwk: dict[str, Any],
                           now: float) -> bool:
        """Store the first signing key, made on first use when no key is active (no actor: the first
        token request of any user makes it; recorded as ``system``, ``jwt.create``). Returns False,
        with nothing written, if a key is active already (another node won the race)."""
        try:
            with self._auth_tx() as conn:
                self._insert_signing_key(conn, SYSTEM, kid, alg, private_pem, public_jwk, now)
                self._audit(conn, SYSTEM, "jwt.create", kid, {"alg": alg, "encrypted": self.cipher.enabled})
        except _Clash:
            return False
        return True

    def add_signing_key(self, actor: Actor, kid: str, alg: str, private_pem: str, public_jwk: dict[str, Any],
                        now: float) -> None:
        """Rotate: store a new key as the active one; the active key is superseded at ``now`` and
        keeps verifying until its tokens expire (core.auth.signing_keys). Admin only; ``jwt.rotate``."""
        self._require_admin(actor, "rotate the JWT signing key", "jwt.rotate")
        try:
            with self._auth_tx() as conn:
                previous = conn.execute(update(SIGNING_KEYS).where(SIGNING_KEYS.c.active_slot == 1)
                                        .values(active_slot=None, superseded_at=float(now))
                                        .returning(SIGNING_KEYS.c.kid)).scalar()
                self._insert_signing_key(conn, actor, kid, alg, private_pem, public_jwk, now)
                self._audit(conn, actor, "jwt.rotate", kid,
                            {"alg": alg, "previous": previous, "encrypted": self.cipher.enabled})
        except _Clash:
            raise ConflictError("another rotation of the JWT signing key ran at the same time; nothing was "
                                "written by this one - list the keys (`python -m core keys jwt-list`) and rotate "
                                "again if needed") from None

    def retire_signing_key(self, actor: Actor, kid: str, now: float) -> SigningKeyRecord:
        """Mark a superseded key retired: tokens it signed are refused from now on. Admin only;
        the active key cannot be retired (rotate first). Retiring a retired key changes nothing."""
        self._require_admin(actor, "retire a JWT signing key", "jwt.retire", str(kid))
        with self._auth_tx() as conn:
            done = conn.execute(update(SIGNING_KEYS).where(SIGNING_KEYS.c.kid == str(kid),
                                                           SIGNING_KEYS.c.active_slot.is_(None),
                                                           SIGNING_KEYS.c.retired_at.is_(None))
                                .values(retired_at=float(now))).rowcount
            row = conn.execute(select(SIGNING_KEYS).where(SIGNING_KEYS.c.kid == str(kid))).first()
            if row is None:
                known = conn.execute(select(SIGNING_KEYS.c.kid)).scalars().all()
                raise NotFoundError(f"no JWT signing key {kid!r}; known: {', '.join(known) or 'none'} "
                                    "(`python -m core keys jwt-list`)")
            if row.active_slot == 1:
                raise ValidationError("kid", f"{kid!r} is the active signing key; rotate first "
                                      "(`python -m core keys jwt-rotate`), then retire it - nothing was written")
            if done:
                self._audit(conn, actor, "jwt.retire", str(kid), {})
        return self._key_record(row)

    def rotate_keys(self, actor: Actor, *, batch_size: int = 500,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """:meth:`AdminMixin.rotate_keys`, then the private signing keys under the newest key too
        (so the old encryption key can be removed afterwards without losing them)."""
        counts = super().rotate_keys(actor, batch_size=batch_size, progress=progress)  # type: ignore[misc]
        rotated = 0
        with self._tx() as conn:
            for kid, value in conn.execute(select(SIGNING_KEYS.c.kid, SIGNING_KEYS.c.private_key)).all():
                if not self.cipher.is_current(value):
                    conn.execute(update(SIGNING_KEYS).where(SIGNING_KEYS.c.kid == kid,
                                                            SIGNING_KEYS.c.private_key == value)
                                 .values(private_key=self.cipher.rotate(value)))
                    rotated += 1
        return {**counts, "signing_keys": rotated}

    # ---------------------------------------------------------------- API keys
    @staticmethod
    def _api_key_record(row: Any) -> ApiKeyRecord:
        return ApiKeyRecord(row.id, row.name, row.role, row.created_by, row.created_at, row.revoked_at,
                            row.last_used_at, row.secret_hash)

    def add_api_key(self, actor: Actor, key_id: str, name: str, role: str, secret_hash: str,
                    now: float) -> ApiKeyRecord:
        """Store a new API key (its hash only). Admin only; audited ``apikey.create``."""
        self._require_admin(actor, "create an API key", "apikey.create", name)
        try:
            with self._auth_tx() as conn:
                conn.execute(insert(API_KEYS).values(id=key_id, name=name, role=role, secret_hash=secret_hash,
                                                     created_by=actor.name, created_at=float(now)))
                self._audit(conn, actor, "apikey.create", key_id, {"name": name, "role": role})
        except _Clash:
            raise ConflictError("an API key with this id exists (a one-in-2^48 chance); create it again - "
                                "nothing was written") from None
        return ApiKeyRecord(key_id, name, role, actor.name, float(now), None, None, secret_hash)

    def api_keys(self) -> list[ApiKeyRecord]:
        """Every API key, newest first (revoked ones too)."""
        with self._read() as conn:
            rows = conn.execute(select(API_KEYS).order_by(API_KEYS.c.created_at.desc(), API_KEYS.c.id)).all()
        return [self._api_key_record(r) for r in rows]

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        """One API key by id (None if there is none)."""
        with self._read() as conn:
            row = conn.execute(select(API_KEYS).where(API_KEYS.c.id == str(key_id))).first()
        return None if row is None else self._api_key_record(row)

    def revoke_api_key(self, actor: Actor, key_id: str, now: float) -> ApiKeyRecord:
        """Revoke an API key and every refresh token issued to it. Admin only; audited
        ``apikey.revoke``. Revoking a revoked key changes nothing."""
        self._require_admin(actor, "revoke an API key", "apikey.revoke", str(key_id))
        with self._auth_tx() as conn:
            done = conn.execute(update(API_KEYS).where(API_KEYS.c.id == str(key_id), API_KEYS.c.revoked_at.is_(None))
                                .values(revoked_at=float(now))).rowcount
            row = conn.execute(select(API_KEYS).where(API_KEYS.c.id == str(key_id))).first()
            if row is None:
                raise NotFoundError(f"no API key {key_id!r} (`python -m core apikeys list` shows them)")
            if done:
                tokens = conn.execute(update(REFRESH_TOKENS).where(REFRESH_TOKENS.c.subject == f"key:{key_id}",
                                                                   REFRESH_TOKENS.c.revoked_at.is_(None))
                                      .values(revoked_at=float(now))).rowcount
                self._audit(conn, actor, "apikey.revoke", str(key_id), {"name": row.name, "refresh_tokens": tokens})
        return self._api_key_record(row)

    # ----------------------------------------------------------------- tokens
    def record_token_issue(self, actor: Actor, refresh: dict[str, Any], details: dict[str, Any], *,
                           api_key_id: str | None = None) -> None:
        """A new token pair for ``actor``: its refresh token (hash, family, audience, times) and the
        ``token.issue`` audit row; for an API key, its ``last_used_at`` too."""
        with self._auth_tx() as conn:
            conn.execute(insert(REFRESH_TOKENS).values(subject=actor.name, **refresh))
            if api_key_id is not None:
                conn.execute(update(API_KEYS).where(API_KEYS.c.id == api_key_id)
                             .values(last_used_at=refresh["issued_at"]))
            self._audit(conn, actor, "token.issue", actor.name, details)

    def record_token_refusal(self, reason: str, details: dict[str, Any], *, target: str = "",
                             actor: Actor = ANONYMOUS) -> None:
        """The ``token.refuse`` audit row (outcome ``denied``) of a refused token or log-in: nothing else
        is written. ``details`` must not hold secrets (never the token itself)."""
        with self._tx() as conn:
            self._audit(conn, actor, "token.refuse", target, {"reason": reason, **details}, outcome="denied")

    def exchange_refresh_token(self, old_hash: str, new: dict[str, Any], now: float,
                               resolve: Callable[[str], str | None]) -> RefreshGrant:
        """Use refresh token ``old_hash`` once and store its successor ``new`` (hash, expiry) in its family.

        ``resolve(user name)`` is the user's current role (None: the user is gone); an API key's
        role is read here, in the same transaction (None once it is revoked). One
        transaction: the token is claimed (``used_at``) only if unused, unrevoked and unexpired; a
        used token presented again revokes its whole family (``token.reuse`` audit
        row): whoever holds a copy, thief or client, must log in again. Every refusal has its
        ``token.refuse`` audit row and writes nothing else.
        """
        with self._auth_tx() as conn:
            claimed = conn.execute(update(REFRESH_TOKENS).where(
                REFRESH_TOKENS.c.token_hash == old_hash, REFRESH_TOKENS.c.used_at.is_(None),
                REFRESH_TOKENS.c.revoked_at.is_(None), REFRESH_TOKENS.c.expires_at > float(now))
                .values(used_at=float(now)).returning(*REFRESH_TOKENS.c)).first()
            if claimed is None:
                return self._refused_refresh(conn, old_hash, now)
            role = self._key_role(conn, claimed.subject[4:]) if claimed.subject.startswith("key:") \
                else resolve(claimed.subject)
            grant = RefreshGrant(None, claimed.subject, role or "", tuple(claimed.audience), claimed.family_id)
            if role is None:
                conn.execute(update(REFRESH_TOKENS).where(REFRESH_TOKENS.c.family_id == claimed.family_id,
                                                          REFRESH_TOKENS.c.revoked_at.is_(None))
                             .values(revoked_at=float(now)))
                self._audit(conn, ANONYMOUS, "token.refuse", claimed.subject,
                            {"reason": "subject", "stage": "refresh", "family": claimed.family_id}, outcome="denied")
                return RefreshGrant("subject", claimed.subject, "", grant.audience, claimed.family_id)
            conn.execute(insert(REFRESH_TOKENS).values(family_id=claimed.family_id, subject=claimed.subject,
                                                       audience=list(claimed.audience), issued_at=float(now), **new))
            if claimed.subject.startswith("key:"):
                conn.execute(update(API_KEYS).where(API_KEYS.c.id == claimed.subject[4:])
                             .values(last_used_at=float(now)))
            self._audit(conn, Actor(claimed.subject, Role(role)), "token.refresh", claimed.subject,
                        {"family": claimed.family_id, "aud": list(claimed.audience)})
        return grant

    @staticmethod
    def _key_role(conn: Connection, key_id: str) -> str | None:
        row = conn.execute(select(API_KEYS.c.role, API_KEYS.c.revoked_at).where(API_KEYS.c.id == key_id)).first()
        return None if row is None or row.revoked_at is not None else row.role

    def _refused_refresh(self, conn: Connection, token_hash: str, now: float) -> RefreshGrant:
        """Why a refresh token could not be claimed; a reuse revokes its family (same transaction)."""
        row = conn.execute(select(REFRESH_TOKENS).where(REFRESH_TOKENS.c.token_hash == token_hash)).first()
        if row is None:
            self._audit(conn, ANONYMOUS, "token.refuse", "", {"reason": "unknown", "stage": "refresh"},
                        outcome="denied")
            return RefreshGrant("unknown")
        audience = tuple(row.audience)
        if row.used_at is None:  # never used: revoked (its family ended, its key revoked), else expired
            reason = "ended" if row.revoked_at is not None else "expired"
            self._audit(conn, ANONYMOUS, "token.refuse", row.subject,
                        {"reason": reason, "stage": "refresh", "family": row.family_id}, outcome="denied")
            return RefreshGrant(reason, row.subject, "", audience, row.family_id)
        revoked = conn.execute(update(REFRESH_TOKENS).where(REFRESH_TOKENS.c.family_id == row.family_id,
                                                            REFRESH_TOKENS.c.revoked_at.is_(None))
                               .values(revoked_at=float(now))).rowcount
        self._audit(conn, ANONYMOUS, "token.reuse", row.subject,
                    {"reason": "reused", "stage": "refresh", "family": row.family_id, "revoked": revoked},
                    outcome="denied")
        return RefreshGrant("reused", row.subject, "", audience, row.family_id)

    def refresh_family(self, family_id: str) -> list[dict[str, Any]]:
        """The refresh tokens of one family, oldest first (hashes, times; for checks and tests)."""
        with self._read() as conn:
            rows = conn.execute(select(REFRESH_TOKENS).where(REFRESH_TOKENS.c.family_id == str(family_id))
                                .order_by(REFRESH_TOKENS.c.issued_at, REFRESH_TOKENS.c.token_hash)).mappings().all()
        return [dict(r) for r in rows]

    def prune_refresh_tokens(self, before: float) -> int:
        """Delete refresh tokens that expired before ``before`` (epoch s); returns how many. Used and
        revoked tokens are kept until they expire, so a reuse is still recognised until then."""
        with self._tx() as conn:
            return conn.execute(delete(REFRESH_TOKENS).where(REFRESH_TOKENS.c.expires_at < float(before))).rowcount
