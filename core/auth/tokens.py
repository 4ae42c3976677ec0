"""The API's token service: a user's password or a program's API key for a short-lived signed JWT
plus a refresh token; verification of every request's token; signing-key rotation and JWKS.

Access token: a JWT (header ``alg: EdDSA``, ``typ: at+jwt``, ``kid`` of the active key, see
core.auth.signing_keys) with the claims ``iss``, ``aud`` (both audiences unless the request
narrows them), ``sub`` (the user name, or ``key:<id>`` for an API key), ``role``, ``iat``,
``nbf``, ``exp`` (epoch seconds; lifetime ``access_ttl_s``, default 15 min) and ``jti``.

:meth:`TokenService.verify` accepts a token only if all of these hold, else
:class:`TokenRefused` with a short ``reason``: the header's ``alg`` is ``EdDSA`` (so ``none``,
HS256 "signed" with the public key, RS/ES tokens are refused before any key is used) and
``typ`` is ``at+jwt``; the ``kid`` is a key of the ring that is not retired or expired; the
signature; ``iss``; the requested ``aud``; ``exp``/``nbf``/``iat`` against the service's
clock with :data:`LEEWAY_S` of skew between nodes; a valid ``role``; and the subject still
exists with that role (a user in the credentials, an API key not revoked; cached ~5 s).

Refresh token: an opaque random string (``glr_`` + 32 random bytes), stored as its SHA-256,
in a *family* that starts at a log-in. Each use returns a new pair and uses the old token up;
presenting a used token again (a copy was taken) revokes the whole family (core.store.auth_records).

Audit (the store's ``audit`` table): ``token.issue``, ``token.refresh``, ``token.refuse`` (with
the reason; nothing else is written by a refusal), ``token.reuse``, ``jwt.create``,
``jwt.rotate``, ``jwt.retire``. Secrets (passwords, tokens, keys) are never recorded.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from core.access import Actor, Role
from core.auth.api_keys import check_api_key
from core.auth.credentials import actor_for
from core.auth.sessions import check_login
from core.auth.settings import AuthConfigError
from core.auth.signing_keys import ALGORITHM, DEFAULT_CACHE_S, KeyRing
from core.auth.throttle import LoginLocked, LoginThrottle
from core.auth.token_subjects import CredentialsSource, SubjectRoles
from core.errors import LatticeError, ValidationError

API_AUDIENCE = "gem-lattice-api"
MCP_AUDIENCE = "gem-lattice-mcp"
AUDIENCES = (API_AUDIENCE, MCP_AUDIENCE)
ISSUER = "gem-lattice"
ISSUER_ENV = "LATTICE_JWT_ISSUER"
ACCESS_TTL_ENV = "LATTICE_JWT_ACCESS_TTL_S"
REFRESH_TTL_ENV = "LATTICE_JWT_REFRESH_TTL_S"
TOKEN_TYPE = "at+jwt"  # RFC 9068: an access token, not any other JWT signed by someone
LEEWAY_S = 5  # seconds of clock difference between nodes tolerated on exp / nbf / iat
MAX_TOKEN_CHARS = 4096
REFRESH_PREFIX = "glr_"
PRUNE_EVERY_S = 3600.0  # expired refresh tokens are deleted at most this often per process
REQUIRED_CLAIMS = ("iss", "aud", "sub", "role", "iat", "nbf", "exp", "jti")
REFUSALS_AUDITED_PER_MINUTE = 60  # per process: a flood of forged tokens must not grow the audit table unbounded


class TokenRefused(LatticeError):
    """A token, log-in or API key is not accepted (HTTP 401). ``reason`` is a short code
    (``expired``, ``signature``, ``unknown_kid``, ``reused``, ``bad_credentials``...); the
    message says what to do. Nothing was written but the audit row."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


_ADVICE = {
    "malformed": "the token is not a well-formed JWT; send the access_token of a token response",
    "algorithm": "the token's algorithm is not accepted (only EdDSA tokens of this service are)",
    "type": "the token is not an access token of this service (typ must be at+jwt)",
    "unknown_kid": "the token was signed with a key this service does not know; request a new token",
    "retired_kid": "the token was signed with a retired key; request a new token",
    "expired_kid": "the token was signed with a key superseded long ago; request a new token",
    "signature": "the token's signature is not valid (it was changed or not issued here); request a new token",
    "issuer": "the token was issued by another issuer",
    "audience": "the token is not meant for this service (audience); request a token for it",
    "claims": "the token lacks required claims or has invalid ones; request a new token",
    "expired": "the token has expired; use the refresh token, or log in again",
    "not_yet_valid": "the token is not valid yet (nbf/iat in the future: check the clocks)",
    "subject": "the user or API key of the token no longer exists or has another role; log in again",
    "bad_credentials": "wrong user name or password",
    "unknown": "the key or refresh token is not valid; log in again",
    "revoked": "the API key was revoked; ask an admin for a new one",
    "ended": "the session of this refresh token was ended (a reuse was detected, or its API key revoked); "
             "log in again",
    "reused": "this refresh token was already used, so the session was ended for safety; log in again",
    "locked": "too many failed log-ins; wait and try again",
}


class RefusalBudget:
    """At most ``per_minute`` refusal audit rows per process in any minute (a fixed one-minute
    window); :meth:`admit` returns how many refusals were left out since the last admitted row
    (0 usually), or None when this one is over the budget (count it, write nothing)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time):
        self.per_minute, self.clock = int(per_minute), clock
        self._window, self._used, self._left_out = float("-inf"), 0, 0
        self._lock = threading.Lock()

    def admit(self) -> int | None:
        with self._lock:
            now = self.clock()
            if now - self._window >= 60.0:
                self._window, self._used = now, 0
            if self._used >= self.per_minute:
                self._left_out += 1
                return None
            self._used += 1
            left_out, self._left_out = self._left_out, 0
            return left_out


@dataclass(frozen=True)
class TokenPair:
    """An access token (``expires_in`` seconds) and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"

    def to_dict(self) -> dict[str, Any]:
        """The OAuth 2 token response body."""
        return {"access_token": self.access_token, "token_type": self.token_type, "expires_in": self.expires_in,
                "refresh_token": self.refresh_token}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _whole_seconds(text: str | None, name: str, default: int) -> int:
    try:
        return int(text) if text not in (None, "") else default
    except ValueError:
        raise AuthConfigError(f"{name}={text!r}: use a whole number of seconds") from None


class TokenService:
    """Issue, verify and refresh the API's tokens on one store (several nodes may share it).

    Parameters
    ----------
    store : core.store.Store
    issuer : str
        The ``iss`` claim written and required (default ``gem-lattice``).
    access_ttl_s, refresh_ttl_s : int
        Lifetimes in seconds: access tokens 10 s .. 1 day (default 900), refresh tokens at least
        the access lifetime, at most 366 days (default 14 days).
    throttle : LoginThrottle, optional
        Failed password log-ins per user name and per client (default: a new one, as the app's).
    credentials : callable, optional
        Returns the credentials mapping (default :class:`CredentialsSource`: the app's users).
    clock : callable
        Epoch seconds (injectable for tests): issue times, expiry checks, key windows.
    """

    def __init__(self, store: Any, *, issuer: str = ISSUER, access_ttl_s: int = 900,
                 refresh_ttl_s: int = 14 * 86400, throttle: LoginThrottle | None = None,
                 credentials: Callable[[], Mapping[str, Any]] | None = None,
                 clock: Callable[[], float] = time.time, cache_s: float = DEFAULT_CACHE_S):
        if not isinstance(issuer, str) or not issuer.strip() or len(issuer) > 200:
            raise AuthConfigError(f"JWT issuer: 1-200 characters, got {issuer!r} ({ISSUER_ENV})")
        if isinstance(access_ttl_s, bool) or not isinstance(access_ttl_s, int) or not 10 <= access_ttl_s <= 86400:
            raise AuthConfigError(f"access-token lifetime: 10 to 86400 whole seconds, got {access_ttl_s!r} "
                                  f"({ACCESS_TTL_ENV})")
        if (isinstance(refresh_ttl_s, bool) or not isinstance(refresh_ttl_s, int)
                or not access_ttl_s <= refresh_ttl_s <= 366 * 86400):
            raise AuthConfigError(f"refresh-token lifetime: from the access lifetime ({access_ttl_s} s) to 366 days "
                                  f"in whole seconds, got {refresh_ttl_s!r} ({REFRESH_TTL_ENV})")
        self.store, self.issuer, self.clock = store, issuer, clock
        self.access_ttl_s, self.refresh_ttl_s = access_ttl_s, refresh_ttl_s
        self.throttle = throttle if throttle is not None else LoginThrottle()
        self.credentials = credentials if credentials is not None else CredentialsSource()
        # a superseded key verifies for as long as a token it signed may live: the lifetime,
        # plus the cache period (another node may sign with it that long after a rotation), plus the leeway
        self.keys = KeyRing(store, window_s=access_ttl_s + cache_s + LEEWAY_S, cache_s=cache_s, clock=clock)
        self.subjects = SubjectRoles(store, self.credentials, cache_s)
        self._pruned_at = float("-inf")
        self._prune_lock = threading.Lock()
        self._refusal_budget = RefusalBudget(REFUSALS_AUDITED_PER_MINUTE, clock)

    @classmethod
    def from_env(cls, store: Any, env: Mapping[str, str] | None = None, **kwargs: Any) -> "TokenService":
        """Settings from ``LATTICE_JWT_ISSUER``, ``LATTICE_JWT_ACCESS_TTL_S``, ``LATTICE_JWT_REFRESH_TTL_S``."""
        env = os.environ if env is None else env
        return cls(store, issuer=(env.get(ISSUER_ENV) or ISSUER).strip(),
                   access_ttl_s=_whole_seconds(env.get(ACCESS_TTL_ENV), ACCESS_TTL_ENV, 900),
                   refresh_ttl_s=_whole_seconds(env.get(REFRESH_TTL_ENV), REFRESH_TTL_ENV, 14 * 86400), **kwargs)

    # ------------------------------------------------------------------ refusals
    def _refuse(self, reason: str, stage: str, *, target: str = "", **details: Any) -> TokenRefused:
        """Record the refusal (``token.refuse``) and return the error to raise; a refusal that
        cannot be recorded (database down) is still a refusal. Over the per-process budget
        (:class:`RefusalBudget`) refusals are counted, not written: the next row written says
        how many were left out (``suppressed``)."""
        suppressed = self._refusal_budget.admit()
        if suppressed is not None:
            extra = {"suppressed": suppressed} if suppressed else {}
            try:
                self.store.record_token_refusal(reason, {"stage": stage, **details, **extra}, target=target[:200])
            except LatticeError:
                pass
        return TokenRefused(reason, _ADVICE.get(reason, "the token is not accepted") + " (nothing was changed)")

    @staticmethod
    def _audience(audience: Sequence[str] | str | None) -> list[str]:
        if audience is None:
            return list(AUDIENCES)
        wanted = [audience] if isinstance(audience, str) else list(audience)
        if not wanted or any(a not in AUDIENCES for a in wanted):
            raise ValidationError("audience", f"{audience!r}: use one or more of {', '.join(AUDIENCES)} "
                                  "(or none for both)")
        return list(dict.fromkeys(wanted))

    # ------------------------------------------------------------------ issuing
    def _sign(self, actor: Actor, audience: list[str], now: float) -> tuple[str, str, str]:
        """A signed access token: ``(token, jti, kid)``."""
        import jwt  # PyJWT + cryptography: imported where a token is made or read (start-up time)
        key = self.keys.signing_key()
        iat, jti = int(now), secrets.token_hex(16)
        claims = {"iss": self.issuer, "aud": audience, "sub": actor.name, "role": actor.role.value, "iat": iat,
                  "nbf": iat, "exp": iat + self.access_ttl_s, "jti": jti}
        token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": TOKEN_TYPE})
        return token, jti, key.kid

    def _issue(self, actor: Actor, audience: list[str], method: str, *, api_key_id: str | None = None,
               **details: Any) -> TokenPair:
        now = self.clock()
        access, jti, kid = self._sign(actor, audience, now)
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        row = {"token_hash": _digest(refresh), "family_id": secrets.token_hex(16), "audience": audience,
               "issued_at": float(now), "expires_at": float(now + self.refresh_ttl_s)}
        self.store.record_token_issue(actor, row, {"method": method, "aud": audience, "kid": kid, "jti": jti,
                                                   "family": row["family_id"], **details}, api_key_id=api_key_id)
        self._prune(now)
        return TokenPair(access, refresh, self.access_ttl_s)

    def _prune(self, now: float) -> None:
        """Delete refresh tokens expired for a whole refresh lifetime (so reuse stays recognised
        that long), at most once an hour per process."""
        with self._prune_lock:
            if now - self._pruned_at < PRUNE_EVERY_S:
                return
            self._pruned_at = now
        self.store.prune_refresh_tokens(now - self.refresh_ttl_s)

    def issue_for_password(self, username: str, password: str, *, audience: Sequence[str] | None = None,
                           client: str = "") -> TokenPair:
        """A token pair for a user of the app (the same bcrypt check and login throttling).

        ``client`` identifies where the request comes from (e.g. the client address): failures
        are counted per user name and per client. Raises :class:`LoginLocked` during a lock-out
        (the password is not checked), :class:`TokenRefused` (``bad_credentials``) otherwise.
        """
        aud = self._audience(audience)
        name = str(username or "").strip().lower()[:200]
        session = str(client or "")[:200] or None
        try:
            self.throttle.check(name, session)
        except LoginLocked:
            self._refuse("locked", "password", target=name, client=session or "")
            raise
        credentials = self.credentials()
        if not check_login(credentials, name, password):  # one bcrypt check, known user or not
            locked = self.throttle.record_failure(name, session)
            error = self._refuse("bad_credentials", "password", target=name, client=session or "")
            if locked:
                raise LoginLocked(f"user {name!r}", locked)
            raise error
        self.throttle.record_success(name, session)
        actor = actor_for(credentials, name)  # check_login succeeded, so the user exists
        self.subjects.forget(name)
        return self._issue(actor, aud, "password", client=session or "")

    def issue_for_api_key(self, secret: str, *, audience: Sequence[str] | None = None) -> TokenPair:
        """A token pair for a program's API key (subject ``key:<id>``, the key's role)."""
        aud = self._audience(audience)
        record, reason = check_api_key(self.store, secret)
        if record is None:
            raise self._refuse(reason, "api_key")
        return self._issue(Actor(f"key:{record.id}", Role(record.role)), aud, "api_key", api_key_id=record.id,
                           name=record.name)

    def refresh(self, refresh_token: str) -> TokenPair:
        """A new pair for a refresh token, which is used up. A token presented a second time
        revokes its whole family (``reused``); the subject's current role goes in the new token."""
        if (not isinstance(refresh_token, str) or not refresh_token.startswith(REFRESH_PREFIX)
                or len(refresh_token) > 200):
            raise self._refuse("malformed", "refresh")
        self.keys.signing_key()  # before the old token is used up: a key problem must not cost the session
        now = self.clock()
        new = REFRESH_PREFIX + secrets.token_urlsafe(32)
        grant = self.store.exchange_refresh_token(
            _digest(refresh_token), {"token_hash": _digest(new), "expires_at": float(now + self.refresh_ttl_s)},
            float(now), self.subjects.user_role)
        if grant.refused:  # the store wrote the audit row (and, for a reuse, revoked the family)
            raise TokenRefused(grant.refused, _ADVICE.get(grant.refused, "the refresh token is not accepted"))
        access, _, _ = self._sign(Actor(grant.subject, Role(grant.role)), list(grant.audience), now)
        return TokenPair(access, new, self.access_ttl_s)

    # ---------------------------------------------------------------- verifying
    def verify(self, access_token: str, *, audience: str) -> Actor:
        """The :class:`~core.access.Actor` of a valid access token for ``audience``, else
        :class:`TokenRefused` (see the module docstring for every check)."""
        import jwt
        if audience not in AUDIENCES:
            raise ValidationError("audience", f"{audience!r}; use one of {', '.join(AUDIENCES)}")
        if not isinstance(access_token, str) or not 0 < len(access_token) <= MAX_TOKEN_CHARS \
                or access_token.count(".") != 2:
            raise self._refuse("malformed", "verify", aud=audience)
        try:
            header = jwt.get_unverified_header(access_token)
        except jwt.PyJWTError:
            raise self._refuse("malformed", "verify", aud=audience) from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM:
            raise self._refuse("algorithm", "verify", aud=audience, alg=str(header.get("alg"))[:20])
        if header.get("typ") != TOKEN_TYPE:
            raise self._refuse("type", "verify", aud=audience)
        if not isinstance(kid, str) or not 0 < len(kid) <= 64:
            raise self._refuse("unknown_kid", "verify", aud=audience)
        key, reason = self.keys.verifying_key(kid)
        if key is None:
            raise self._refuse(reason, "verify", aud=audience, kid=kid)
        try:  # times are checked below against the service's clock, not PyJWT's
            claims = jwt.decode(access_token, key.public_key, algorithms=[ALGORITHM], audience=audience,
                                issuer=self.issuer, options={"require": list(REQUIRED_CLAIMS), "verify_exp": False,
                                                             "verify_nbf": False, "verify_iat": False})
        except jwt.InvalidSignatureError:
            raise self._refuse("signature", "verify", aud=audience, kid=kid) from None
        except jwt.InvalidAudienceError:
            raise self._refuse("audience", "verify", aud=audience, kid=kid) from None
        except jwt.InvalidIssuerError:
            raise self._refuse("issuer", "verify", aud=audience, kid=kid) from None
        except jwt.InvalidAlgorithmError:
            raise self._refuse("algorithm", "verify", aud=audience, kid=kid) from None
        except jwt.MissingRequiredClaimError:
            raise self._refuse("claims", "verify", aud=audience, kid=kid) from None
        except jwt.PyJWTError:
            raise self._refuse("malformed", "verify", aud=audience, kid=kid) from None
        return self._actor(claims, audience, kid)

    def _actor(self, claims: dict[str, Any], audience: str, kid: str) -> Actor:
        """The checks PyJWT was not asked to make: times, role, subject."""
        times = [claims.get(k) for k in ("iat", "nbf", "exp")]
        sub, role, jti = claims.get("sub"), claims.get("role"), claims.get("jti")
        if (any(isinstance(t, bool) or not isinstance(t, (int, float)) for t in times) or not isinstance(sub, str)
                or not sub or len(sub) > 200 or role not in {r.value for r in Role} or not isinstance(jti, str)):
            raise self._refuse("claims", "verify", aud=audience, kid=kid)
        now, (iat, nbf, exp) = self.clock(), times
        if exp <= now - LEEWAY_S:
            raise self._refuse("expired", "verify", target=sub, aud=audience, kid=kid, jti=jti[:64])
        if nbf > now + LEEWAY_S or iat > now + LEEWAY_S:
            raise self._refuse("not_yet_valid", "verify", target=sub, aud=audience, kid=kid, jti=jti[:64])
        if self.subjects.role(sub) != role:
            raise self._refuse("subject", "verify", target=sub, aud=audience, kid=kid, jti=jti[:64])
        return Actor(sub, Role(role))

    # ---------------------------------------------------------------- the keys
    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """``{"keys": [...]}``: the public JWKs (``kid``, ``alg``, ``use``) of the active and previous keys."""
        return self.keys.jwks()

    def rotate_signing_key(self, actor: Actor) -> str:
        """Make a new active signing key (admin only, audited ``jwt.rotate``); returns its kid."""
        return self.keys.rotate(actor)

    def retire_signing_key(self, actor: Actor, kid: str) -> dict[str, Any]:
        """Refuse tokens signed with ``kid`` from now on (admin only, audited ``jwt.retire``)."""
        return self.keys.retire(actor, kid).to_dict(self.clock(), self.keys.window_s)

    def signing_keys(self) -> list[dict[str, Any]]:
        """Every signing key, newest first, with its state (``active``, ``previous``, ``expired``, ``retired``)."""
        now = self.clock()
        return [k.to_dict(now, self.keys.window_s) for k in self.keys.keys()]
