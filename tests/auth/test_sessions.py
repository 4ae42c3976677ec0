"""Login cookies (item 10) and log-in checks that do not reveal which users exist (item 14)."""
from __future__ import annotations

import time

import jwt
import pytest
from hypothesis import given, settings, strategies as st

import core.auth.sessions as sessions
from core.auth import add_user, check_login, issue_cookie_token, RevocationList, verify_cookie_token

KEY = "k" * 48


@pytest.fixture(scope="module")
def creds():
    c = add_user({}, "alice", "s3cret-pass", "researcher")
    return add_user(c, "bob", "other-pass", "viewer")


@pytest.fixture
def revoked(tmp_path):
    return RevocationList(tmp_path / "revoked.json")


def test_a_cookie_captured_before_logout_is_refused_after_it(creds, revoked):
    token, payload = issue_cookie_token(creds, "alice", KEY, 7)
    assert verify_cookie_token(token, KEY, creds, revoked)["username"] == "alice"
    revoked.revoke(payload["jti"], payload["exp_date"])  # "Log out"
    assert verify_cookie_token(token, KEY, creds, revoked) is None
    # another node (another RevocationList on the same file) refuses it too
    assert verify_cookie_token(token, KEY, creds, RevocationList(revoked.path)) is None
    other, _ = issue_cookie_token(creds, "alice", KEY, 7)  # a new log-in is a new session
    assert verify_cookie_token(other, KEY, creds, revoked)["username"] == "alice"


def test_a_password_change_invalidates_every_cookie_of_the_user(creds, revoked):
    token, _ = issue_cookie_token(creds, "bob", KEY, 7)
    changed = add_user({"usernames": dict(creds["usernames"])}, "bob", "new-pass-1", "viewer")
    assert changed["usernames"]["bob"]["token_version"] == creds["usernames"]["bob"].get("token_version", 0) + 1
    assert verify_cookie_token(token, KEY, changed, revoked) is None


def test_old_format_expired_foreign_and_tampered_cookies_are_refused(creds, revoked):
    legacy = jwt.encode({"username": "alice", "exp_date": time.time() + 3600}, KEY, algorithm="HS256")
    assert verify_cookie_token(legacy, KEY, creds, revoked) is None  # no session id: cannot be revoked
    expired, _ = issue_cookie_token(creds, "alice", KEY, 7, now=time.time() - 8 * 86400)
    assert verify_cookie_token(expired, KEY, creds, revoked) is None
    foreign, _ = issue_cookie_token(creds, "alice", "z" * 48, 7)
    assert verify_cookie_token(foreign, KEY, creds, revoked) is None
    none_alg = jwt.encode({"username": "alice", "exp_date": time.time() + 3600, "jti": "x" * 32, "ver": 0},
                          None, algorithm="none")
    assert verify_cookie_token(none_alg, KEY, creds, revoked) is None
    token, _ = issue_cookie_token(creds, "alice", KEY, 7)
    assert verify_cookie_token(token, KEY, {"usernames": {}}, revoked) is None  # user removed


@settings(max_examples=60, deadline=None)
@given(pos=st.integers(min_value=0, max_value=10_000), byte=st.characters(min_codepoint=33, max_codepoint=126))
def test_any_changed_character_is_refused(creds, tmp_path_factory, pos, byte):
    rev = RevocationList(tmp_path_factory.mktemp("r") / "revoked.json")
    token, _ = issue_cookie_token(creds, "alice", KEY, 7)
    pos %= len(token)
    if token[pos] == byte:
        return
    bad = token[:pos] + byte + token[pos + 1:]
    out = verify_cookie_token(bad, KEY, creds, rev)
    # base64url can decode a changed last character to the same bytes; then the token is the same one
    assert out is None or jwt.decode(bad, KEY, algorithms=["HS256"]) == jwt.decode(token, KEY, algorithms=["HS256"])


def test_revocations_expire_with_the_cookie_and_survive_a_damaged_file(revoked):
    revoked.revoke("a" * 32, time.time() - 1)  # already expired: nothing to keep
    revoked.revoke("b" * 32, time.time() + 3600)
    assert not revoked.is_revoked("a" * 32) and revoked.is_revoked("b" * 32)
    revoked.path.write_text("{not json")
    assert RevocationList(revoked.path).is_revoked("b" * 32)  # fail closed: a damaged list refuses cookies


def test_unknown_users_cost_one_bcrypt_check_like_known_ones(creds, monkeypatch):
    calls = []
    real = sessions.bcrypt.checkpw
    monkeypatch.setattr(sessions.bcrypt, "checkpw", lambda pw, h: calls.append(h) or real(pw, h))
    assert check_login(creds, "alice", "s3cret-pass")
    assert not check_login(creds, "alice", "wrong")
    assert not check_login(creds, "nobody", "wrong")
    assert not check_login(creds, "", "wrong")
    assert len(calls) == 4  # once per attempt, known user or not
    cost = creds["usernames"]["alice"]["password"].split("$")[2]
    assert calls[2].decode().split("$")[2] == cost  # the dummy hash has the users' cost
    assert not check_login(creds, "nobody", creds["usernames"]["alice"]["password"])


def test_where_the_revocation_list_lives(tmp_path):
    from core.auth import revocations_path
    creds = tmp_path / "creds.yaml"
    assert revocations_path({"LATTICE_CREDENTIALS": str(creds)}) == tmp_path / "creds.revoked.json"
    assert revocations_path({"LATTICE_REVOKED_SESSIONS": "/shared/r.json", "LATTICE_DEMO": "1"}) == \
        __import__("pathlib").Path("/shared/r.json")
    assert "gem-lattice-demo" in revocations_path({"LATTICE_DEMO": "1"}).name  # not in the checkout


def test_long_or_odd_passwords_are_refused_cleanly(creds, monkeypatch):
    from core.auth import AuthConfigError, hash_password
    calls = []
    real = sessions.bcrypt.checkpw
    monkeypatch.setattr(sessions.bcrypt, "checkpw", lambda pw, h: calls.append(h) or real(pw, h))
    for password in ("x" * 200, "s3cret-pass" + "x" * 70, "a\x00b", "\ud800", ""):
        assert check_login(creds, "alice", password) is False
        assert check_login(creds, "nobody", password) is False
    assert len(calls) == 10
    with pytest.raises(AuthConfigError, match="72 bytes"):
        hash_password("é" * 40)
