"""The API's token service (issue 15, item 2): issue, verify, refresh, audit (keys and nodes:
test_jwt_keys.py).

Real bcrypt credentials, real Ed25519 keys, real SQLite files and the real PostgreSQL (``db_url``).
Every tampered token is refused with TokenRefused and writes nothing but its audit row.

Long file: one case per way a token can be forged or misused, each with its own small maker,
reads best as one table of attacks in one place.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from core.access import SYSTEM, Actor, Role
from core.auth import (API_AUDIENCE, MCP_AUDIENCE, AuthConfigError, LoginLocked, TokenPair, TokenRefused,
                       TokenService)
from core.errors import ValidationError
from tests.auth.token_fixtures import (USERS, auth_state, credentials, last_audit, make_service, now,  # noqa: F401
                                       password, service)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict, dict, str]:
    head, body, sig = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(head))), json.loads(base64.urlsafe_b64decode(pad(body))), sig


def forge(header: dict, claims: dict, sign) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def good_claims(service: TokenService, sub: str = "vic", role: str = "viewer") -> dict:
    t = int(service.clock())
    return {"iss": service.issuer, "aud": [API_AUDIENCE, MCP_AUDIENCE], "sub": sub, "role": role, "iat": t, "nbf": t,
            "exp": t + 600, "jti": "f" * 32}


def login(service: TokenService, user: str = "vic", **kw) -> TokenPair:
    return service.issue_for_password(user, password(user), **kw)


# ----------------------------------------------------------------------------- issue and verify
@pytest.mark.parametrize("user", sorted(USERS))
def test_each_role_is_carried_by_its_token(service, store, user):
    pair = login(service, user)
    assert set(pair.to_dict()) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert pair.token_type == "Bearer" and pair.expires_in == 900
    header, claims, _ = segments(pair.access_token)
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": service.keys.signing_key().kid}
    assert claims["sub"] == user and claims["role"] == USERS[user] and claims["iss"] == "gem-lattice"
    assert claims["aud"] == [API_AUDIENCE, MCP_AUDIENCE] and claims["exp"] - claims["iat"] == 900
    assert claims["nbf"] == claims["iat"] and len(claims["jti"]) == 32
    for audience in (API_AUDIENCE, MCP_AUDIENCE):
        assert service.verify(pair.access_token, audience=audience) == Actor(user, Role(USERS[user]))
    again = service.refresh(pair.refresh_token)
    assert service.verify(again.access_token, audience=API_AUDIENCE) == Actor(user, Role(USERS[user]))
    audit = store.audit_log()
    assert list(audit["action"])[:2] == ["token.refresh", "token.issue"]
    assert audit["details"][1]["method"] == "password" and audit["actor"][1] == user
    dump = audit.to_csv()
    assert password(user) not in dump and pair.refresh_token not in dump and pair.access_token not in dump


def test_a_token_request_may_narrow_the_audience(service):
    pair = login(service, audience=[MCP_AUDIENCE])
    assert segments(pair.access_token)[1]["aud"] == [MCP_AUDIENCE]
    assert service.verify(pair.access_token, audience=MCP_AUDIENCE).name == "vic"
    assert segments(service.refresh(pair.refresh_token).access_token)[1]["aud"] == [MCP_AUDIENCE]
    with pytest.raises(ValidationError, match="audience"):
        login(service, audience=["somebody-else"])
    with pytest.raises(ValidationError, match="audience"):
        login(service, audience=[])


def test_wrong_password_is_refused_counted_and_locks_out(service, store, now):
    state = auth_state(store)
    with pytest.raises(TokenRefused) as err:
        service.issue_for_password("vic", "not-it")
    assert err.value.reason == "bad_credentials" and "wrong user name or password" in str(err.value)
    after = auth_state(store)
    assert after == {**state, "audit": state["audit"] + 1}
    row = last_audit(store)
    assert (row["action"], row["outcome"], row["target"], row["details"]["reason"]) == \
        ("token.refuse", "denied", "vic", "bad_credentials")
    with pytest.raises(TokenRefused):
        service.issue_for_password("nobody", "x", client="10.0.0.9")
    with pytest.raises(TokenRefused):
        service.issue_for_password("vic", "still-not-it")
    with pytest.raises(LoginLocked):  # the third failure of "vic" (max_failures=3)
        service.issue_for_password("vic", "nope")
    with pytest.raises(LoginLocked):  # locked: not even the right password is checked
        login(service)
    now.advance(61)
    assert service.verify(login(service).access_token, audience=API_AUDIENCE).name == "vic"


# ------------------------------------------------------------------------------------ tampering
def _changed_payload(service, pair):
    head, body, sig = pair.access_token.split(".")
    claims = segments(pair.access_token)[1]
    claims["role"] = "admin"
    return f"{head}.{b64(json.dumps(claims).encode())}.{sig}"


def _alg_none(service, pair):
    header = {"alg": "none", "typ": "at+jwt", "kid": service.keys.signing_key().kid}
    return forge(header, good_claims(service, "ada", "admin"), lambda _: b"")


def _hs256_public_raw(service, pair):
    key = service.keys.signing_key()
    secret = base64.urlsafe_b64decode(key.public_jwk["x"] + "=")
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
    return forge(header, good_claims(service, "ada", "admin"), lambda m: hmac.new(secret, m, hashlib.sha256).digest())


def _hs256_public_pem(service, pair):
    key = service.keys.signing_key()
    secret = key.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": key.kid}
    return forge(header, good_claims(service, "ada", "admin"), lambda m: hmac.new(secret, m, hashlib.sha256).digest())


def _es256_same_kid(service, pair):
    other = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(good_claims(service, "ada", "admin"), other, algorithm="ES256",
                      headers={"kid": service.keys.signing_key().kid, "typ": "at+jwt"})


def _rs256_same_kid(service, pair):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(good_claims(service, "ada", "admin"), other, algorithm="RS256",
                      headers={"kid": service.keys.signing_key().kid, "typ": "at+jwt"})


def _unknown_kid(service, pair):
    other = ed25519.Ed25519PrivateKey.generate()
    return jwt.encode(good_claims(service, "ada", "admin"), other, algorithm="EdDSA",
                      headers={"kid": "unknownkid000000", "typ": "at+jwt"})


def _own_key_other_signer(service, pair):
    """An attacker's Ed25519 key presented under the service's kid: the signature fails."""
    other = ed25519.Ed25519PrivateKey.generate()
    return jwt.encode(good_claims(service, "ada", "admin"), other, algorithm="EdDSA",
                      headers={"kid": service.keys.signing_key().kid, "typ": "at+jwt"})


def _not_an_access_token(service, pair):
    key = service.keys.signing_key()
    return jwt.encode(good_claims(service), key.private_key, algorithm="EdDSA", headers={"kid": key.kid})


def _missing_role(service, pair):
    key = service.keys.signing_key()
    claims = good_claims(service)
    del claims["role"]
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid, "typ": "at+jwt"})


def _garbage(service, pair):
    return "not.a.jwt"


TAMPERED = [(_changed_payload, "signature"), (_alg_none, "algorithm"), (_hs256_public_raw, "algorithm"),
            (_hs256_public_pem, "algorithm"), (_es256_same_kid, "algorithm"), (_rs256_same_kid, "algorithm"),
            (_unknown_kid, "unknown_kid"), (_own_key_other_signer, "signature"), (_not_an_access_token, "type"),
            (_missing_role, "claims"), (_garbage, "malformed")]


@pytest.mark.parametrize("make_token, reason", TAMPERED, ids=[f.__name__.strip("_") for f, _ in TAMPERED])
def test_tampered_tokens_are_refused_and_write_only_the_audit_row(service, store, make_token, reason):
    pair = login(service)
    token = make_token(service, pair)
    state = auth_state(store)
    for audience in (API_AUDIENCE, MCP_AUDIENCE):
        with pytest.raises(TokenRefused) as err:
            service.verify(token, audience=audience)
        assert err.value.reason == reason and "nothing was changed" in str(err.value)
    assert auth_state(store) == {**state, "audit": state["audit"] + 2}
    row = last_audit(store)
    assert (row["action"], row["outcome"], row["actor"]) == ("token.refuse", "denied", "anonymous")
    assert row["details"]["reason"] == reason and row["details"]["stage"] == "verify"
    assert service.verify(pair.access_token, audience=API_AUDIENCE).name == "vic"  # the real one still works


def _refused(service, store, token, reason, audience=API_AUDIENCE):
    state = auth_state(store)
    with pytest.raises(TokenRefused) as err:
        service.verify(token, audience=audience)
    assert err.value.reason == reason
    assert auth_state(store) == {**state, "audit": state["audit"] + 1}
    assert last_audit(store)["details"]["reason"] == reason


def test_expired_token_is_refused(service, store, now):
    pair = login(service)
    now.advance(900 + 4)  # within the leeway (5 s) of the expiry: still accepted
    assert service.verify(pair.access_token, audience=API_AUDIENCE).name == "vic"
    now.advance(2)
    _refused(service, store, pair.access_token, "expired")


def test_token_not_yet_valid_is_refused(make_service, store, now):
    ahead = make_service(clock=lambda: now() + 3600)  # a node whose clock is an hour ahead
    _refused(make_service(), store, login(ahead).access_token, "not_yet_valid")


def test_wrong_audience_is_refused(service, store):
    _refused(service, store, login(service, audience=[API_AUDIENCE]).access_token, "audience", MCP_AUDIENCE)


def test_wrong_issuer_is_refused(make_service, store):
    other = make_service(issuer="someone-else")  # same store, so the same keys: only iss differs
    _refused(make_service(), store, login(other).access_token, "issuer")


def test_retired_kid_is_refused(service, store):
    pair = login(service)
    old = segments(pair.access_token)[0]["kid"]
    new = service.rotate_signing_key(Actor("ada", Role.ADMIN))
    assert new != old and service.verify(pair.access_token, audience=API_AUDIENCE).name == "vic"
    with pytest.raises(ValidationError, match="active signing key"):
        service.retire_signing_key(SYSTEM, new)
    assert service.retire_signing_key(SYSTEM, old)["state"] == "retired"
    _refused(service, store, pair.access_token, "retired_kid")
    assert [k["kid"] for k in service.jwks()["keys"]] == [new]


def test_user_removed_or_role_changed_is_refused(make_service, store, credentials):
    users = json.loads(json.dumps(credentials))
    service = make_service(credentials=lambda: users, cache_s=0.0)
    rex, vic = login(service, "rex"), login(service, "vic")
    users["usernames"]["rex"]["roles"] = ["viewer"]
    del users["usernames"]["vic"]
    _refused(service, store, rex.access_token, "subject")
    _refused(service, store, vic.access_token, "subject")
    with pytest.raises(TokenRefused) as err:  # a refresh token of a removed user: refused, family ended
        service.refresh(vic.refresh_token)
    assert err.value.reason == "subject"
    demoted = service.refresh(rex.refresh_token)  # a refresh carries the current role
    assert service.verify(demoted.access_token, audience=API_AUDIENCE) == Actor("rex", Role.VIEWER)


# -------------------------------------------------------------------------------------- refresh
def test_refresh_rotates_and_a_reused_token_revokes_the_family(service, store):
    first = login(service, "rex")
    second = service.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    family = last_audit(store)["details"]["family"]
    before = auth_state(store)
    with pytest.raises(TokenRefused) as err:
        service.refresh(first.refresh_token)  # a copy of the used token: someone else has it
    assert err.value.reason == "reused" and "log in again" in str(err.value)
    after = auth_state(store)
    assert after["audit"] == before["audit"] + 1 and after["keys"] == before["keys"]
    row = last_audit(store)
    assert (row["action"], row["outcome"], row["details"]["family"]) == ("token.reuse", "denied", family)
    assert all(t["revoked_at"] is not None for t in store.refresh_family(family))
    with pytest.raises(TokenRefused) as err:  # the legitimate successor is ended too
        service.refresh(second.refresh_token)
    assert err.value.reason == "ended"
    for bad, reason in (("glr_" + "x" * 43, "unknown"), ("nonsense", "malformed"), (None, "malformed")):
        state = auth_state(store)
        with pytest.raises(TokenRefused) as err:
            service.refresh(bad)
        assert err.value.reason == reason and auth_state(store) == {**state, "audit": state["audit"] + 1}


def test_expired_refresh_token_is_refused(make_service, store, now):
    service = make_service(access_ttl_s=60, refresh_ttl_s=120)
    pair = login(service)
    now.advance(121)
    state = auth_state(store)
    with pytest.raises(TokenRefused) as err:
        service.refresh(pair.refresh_token)
    assert err.value.reason == "expired" and auth_state(store) == {**state, "audit": state["audit"] + 1}


def test_settings_from_the_environment_and_their_errors(store):
    service = TokenService.from_env(store, {"LATTICE_JWT_ISSUER": "lab", "LATTICE_JWT_ACCESS_TTL_S": "120",
                                            "LATTICE_JWT_REFRESH_TTL_S": "3600"})
    assert (service.issuer, service.access_ttl_s, service.refresh_ttl_s) == ("lab", 120, 3600)
    for env, match in (({"LATTICE_JWT_ACCESS_TTL_S": "soon"}, "whole number"),
                       ({"LATTICE_JWT_ACCESS_TTL_S": "5"}, "10 to 86400"),
                       ({"LATTICE_JWT_ACCESS_TTL_S": "600", "LATTICE_JWT_REFRESH_TTL_S": "60"}, "refresh-token")):
        with pytest.raises(AuthConfigError, match=match):
            TokenService.from_env(store, env)
    with pytest.raises(ValidationError, match="audience"):
        service.verify("a.b.c", audience="elsewhere")
