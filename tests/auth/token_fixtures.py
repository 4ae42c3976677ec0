"""What the token-service tests share: users with real bcrypt hashes, a manual clock, services on
one store, and a snapshot of everything the auth tables and the audit log hold."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from core.auth import LoginThrottle, TokenService, hash_password
from core.store.tables import API_KEYS, AUDIT, REFRESH_TOKENS, SIGNING_KEYS
from tests.fakes import FakeClock

USERS = {"ada": "admin", "rex": "researcher", "vic": "viewer"}


def password(user: str) -> str:
    return f"pw-{user}-123"


@pytest.fixture(scope="module")
def credentials() -> dict:
    """Three users, one per role, bcrypt-hashed (cost 4: the format of the app's, fast to check)."""
    return {"usernames": {name: {"name": name, "email": f"{name}@x.invalid", "roles": [role],
                                 "password": hash_password(password(name), rounds=4)}
                          for name, role in USERS.items()}}


@pytest.fixture
def now() -> FakeClock:
    return FakeClock(start=float(int(time.time())))


@pytest.fixture
def make_service(store, credentials, now):
    """``make_service(**overrides)``: a TokenService on the test's store, the users above, the clock."""
    def make(**kwargs) -> TokenService:
        kwargs.setdefault("credentials", lambda: credentials)
        kwargs.setdefault("clock", now)
        kwargs.setdefault("throttle", LoginThrottle(max_failures=3, lockout_s=60, clock=now))
        return TokenService(store, **kwargs)
    return make


@pytest.fixture
def service(make_service) -> TokenService:
    return make_service()


def auth_state(store) -> dict:
    """Every row of the auth tables, and the number of audit rows."""
    with store.engine.connect() as conn:
        return {"keys": [tuple(r) for r in conn.execute(select(SIGNING_KEYS).order_by(SIGNING_KEYS.c.kid))],
                "api_keys": [tuple(r) for r in conn.execute(select(API_KEYS).order_by(API_KEYS.c.id))],
                "refresh": [tuple(r) for r in conn.execute(select(REFRESH_TOKENS)
                                                            .order_by(REFRESH_TOKENS.c.token_hash))],
                "audit": conn.execute(select(func.count()).select_from(AUDIT)).scalar_one()}


def last_audit(store) -> dict:
    return store.audit_log(limit=1).to_dict(orient="records")[0]
