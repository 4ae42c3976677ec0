"""The token service's signing keys and its nodes (issue 15, item 2): rotation seen by a second node,
the first key made once, retirement, encryption at rest, concurrent refreshes; the migration.

Two Store objects on one database stand for two API nodes (SQLite file or PostgreSQL: ``db_url``).
"""
from __future__ import annotations

import time

import pytest

from core.access import SYSTEM, Actor, PermissionDenied, Role
from core.auth import API_AUDIENCE, MCP_AUDIENCE, TokenPair, TokenRefused, TokenService
from core.store import Store
from core.store.tables import SIGNING_KEYS
from tests.auth.test_jwt_tokens import login, segments
from tests.auth.token_fixtures import (auth_state, credentials, last_audit, make_service, now,  # noqa: F401
                                       service)


def test_rotation_is_seen_by_a_second_node_on_the_same_database(make_service, store, db_url, credentials, now):
    """Two nodes (two Store objects, two services) on one database, SQLite or PostgreSQL."""
    with Store.open(db_url) as other_store:
        a = make_service()
        b = TokenService(other_store, credentials=lambda: credentials, clock=now)
        c = make_service(cache_s=0.2)  # a node with a short cache period
        old_token = login(a).access_token
        assert segments(login(c).access_token)[0]["kid"] == segments(old_token)[0]["kid"]
        k1 = segments(old_token)[0]["kid"]
        assert b.verify(old_token, audience=API_AUDIENCE).name == "vic" and b.keys.signing_key().kid == k1
        k2 = b.rotate_signing_key(Actor("ada", Role.ADMIN))
        new_token = login(b).access_token
        assert segments(new_token)[0]["kid"] == k2
        assert a.verify(new_token, audience=API_AUDIENCE).name == "vic"  # unknown kid: a reloads at once
        assert a.verify(old_token, audience=MCP_AUDIENCE).name == "vic"  # the previous key still verifies
        assert {k["kid"] for k in a.jwks()["keys"]} == {k["kid"] for k in b.jwks()["keys"]} == {k1, k2}
        time.sleep(0.3)  # c signed with k1 before the rotation; once its cache period has passed, with k2
        assert segments(login(c).access_token)[0]["kid"] == k2
        now.advance(a.keys.window_s + 1)  # every token k1 signed has expired by now
        assert [k["kid"] for k in a.jwks()["keys"]] == [k2]
        assert {k["kid"]: k["state"] for k in a.signing_keys()} == {k1: "expired", k2: "active"}
        pair = login(a)
        a.retire_signing_key(SYSTEM, k1)
        assert b.verify(pair.access_token, audience=API_AUDIENCE).name == "vic"


def test_first_use_creates_one_key_even_with_two_nodes(store, db_url, credentials, now):
    with Store.open(db_url) as other_store:
        a = TokenService(store, credentials=lambda: credentials, clock=now)
        b = TokenService(other_store, credentials=lambda: credentials, clock=now)
        assert a.jwks() == b.jwks() and len(a.jwks()["keys"]) == 1
        jwk = a.jwks()["keys"][0]
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"} and (jwk["alg"], jwk["use"]) == ("EdDSA", "sig")
        state = auth_state(store)
        # a node that lost the race to create the first key: the unique active slot refuses it
        assert not other_store.ensure_signing_key("second", "EdDSA", "pem", {}, now())
        assert auth_state(store) == state
        assert [r["action"] for r in store.audit_log().to_dict(orient="records")] == ["jwt.create"]


def test_rotation_and_retirement_are_admin_only_and_audited(service, store):
    login(service)
    state = auth_state(store)
    for role in (Role.VIEWER, Role.RESEARCHER):
        with pytest.raises(PermissionDenied):
            service.rotate_signing_key(Actor("rex", role))
        with pytest.raises(PermissionDenied):
            service.retire_signing_key(Actor("rex", role), service.keys.signing_key().kid)
    assert auth_state(store)["keys"] == state["keys"]
    assert set(store.audit_log(limit=4)["outcome"]) == {"denied"}
    kid = service.rotate_signing_key(Actor("ada", Role.ADMIN))
    row = last_audit(store)
    assert (row["action"], row["actor"], row["target"]) == ("jwt.rotate", "ada", kid)


def test_private_keys_are_encrypted_at_rest_and_follow_the_key_rotation(tmp_path, credentials, now):
    from core.store import generate_key
    url, k1, k2 = f"sqlite:///{tmp_path / 'enc.db'}", generate_key(), generate_key()
    with Store.open(url, keys=[k1]) as store:
        token = login(TokenService(store, credentials=lambda: credentials, clock=now)).access_token
        with store.engine.connect() as conn:
            stored = conn.execute(SIGNING_KEYS.select()).first().private_key
        assert stored.startswith("fernet:") and "PRIVATE KEY" not in stored
    with Store.open(url, keys=[k2, k1]) as store:
        assert store.rotate_keys(SYSTEM)["signing_keys"] == 1
    with Store.open(url, keys=[k2]) as store:  # the old key removed: the signing key is still readable
        service = TokenService(store, credentials=lambda: credentials, clock=now)
        assert service.verify(token, audience=API_AUDIENCE).name == "vic"
        assert service.verify(login(service).access_token, audience=API_AUDIENCE).name == "vic"
    with Store.open(f"sqlite:///{tmp_path / 'plain.db'}", keys=[]) as store:
        login(TokenService(store, credentials=lambda: credentials, clock=now))
        assert "PRIVATE KEY" in store.signing_keys()[0].private_pem




def test_migration_0006_adds_the_auth_tables_and_goes_back(db_url):
    from sqlalchemy import inspect

    from core.store import db
    engine = db.create_db_engine(db_url)
    try:
        db.upgrade(engine, "0005")
        assert db.upgrade(engine) == "0006" == db.head_revision()
        assert {"jwt_signing_keys", "api_keys", "refresh_tokens"} <= set(inspect(engine).get_table_names())
        assert db.downgrade(engine, "0005") == "0005"
        assert not {"jwt_signing_keys", "api_keys", "refresh_tokens"} & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _race(*calls):
    """Run the calls at once on threads; returns each one's result or exception, in order."""
    import threading
    barrier, out = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            out[i] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            out[i] = exc
    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_two_nodes_refreshing_one_token_at_once_end_its_family(store, db_url, credentials, now):
    with Store.open(db_url) as other_store:
        a = TokenService(store, credentials=lambda: credentials, clock=now)
        b = TokenService(other_store, credentials=lambda: credentials, clock=now)
        pair = login(a)
        results = _race(lambda: a.refresh(pair.refresh_token), lambda: b.refresh(pair.refresh_token))
        won = [r for r in results if isinstance(r, TokenPair)]
        lost = [r for r in results if isinstance(r, TokenRefused)]
        assert len(won) == 1 and [e.reason for e in lost] == ["reused"]  # one use only, on any node
        with pytest.raises(TokenRefused):  # the winner's successor was ended with the family
            a.refresh(won[0].refresh_token)


def test_two_nodes_making_the_first_key_at_once_agree_on_one(store, db_url, credentials, now):
    with Store.open(db_url) as other_store:
        a = TokenService(store, credentials=lambda: credentials, clock=now)
        b = TokenService(other_store, credentials=lambda: credentials, clock=now)
        kids = _race(lambda: a.keys.signing_key().kid, lambda: b.keys.signing_key().kid)
        assert kids[0] == kids[1] and isinstance(kids[0], str)
        assert [k.kid for k in store.signing_keys()] == [kids[0]]
