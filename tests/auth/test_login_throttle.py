"""core.auth.throttle.LoginThrottle: failures per user and per session, lock-out, injectable clock."""
from __future__ import annotations

import pytest

from core.access import Actor, PermissionDenied
from core.auth import AuthConfigError, LoginLocked, LoginThrottle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_user_is_locked_after_max_failures_from_any_session_and_unlocked_after_the_period():
    clock = Clock()
    th = LoginThrottle(max_failures=3, lockout_s=60, clock=clock)
    for sid in ("s1", "s2"):
        th.check("alice", sid)
        assert th.record_failure("alice", sid) == 0.0
    assert th.failures_left("Alice", "s3") == 1  # user names are case-insensitive
    assert th.record_failure("ALICE", "s3") == 60.0
    with pytest.raises(LoginLocked, match="user 'alice'.*try again in 60 s") as info:
        th.check("alice", "fresh-session")
    assert info.value.retry_after == 60.0
    th.check("bob", "fresh-session")  # other users are not affected
    clock.now += 59.5
    with pytest.raises(LoginLocked, match="in 1 s"):
        th.check("alice", "s9")
    clock.now += 1.0
    th.check("alice", "s9")  # lock-out over: a fresh count
    assert th.failures_left("alice", "s9") == 3


def test_session_is_locked_when_it_tries_many_user_names():
    th = LoginThrottle(max_failures=2, lockout_s=30, clock=Clock())
    th.record_failure("a", "attacker")
    th.record_failure("b", "attacker")
    with pytest.raises(LoginLocked, match="this browser session"):
        th.check("c", "attacker")
    th.check("c", "someone-else")
    assert th.retry_after("c", "attacker") == 30.0


def test_success_clears_the_counters():
    th = LoginThrottle(max_failures=3, lockout_s=30, clock=Clock())
    th.record_failure("alice", "s")
    th.record_failure("alice", "s")
    th.record_success("alice", "s")
    assert th.failures_left("alice", "s") == 3
    assert th.record_failure("alice", "s") == 0.0


def test_configuration_from_environment_and_bad_values():
    th = LoginThrottle(env={"LATTICE_LOGIN_MAX_FAILURES": "7", "LATTICE_LOGIN_LOCKOUT_S": "120"})
    assert (th.max_failures, th.lockout_s) == (7, 120.0)
    assert (LoginThrottle(env={}).max_failures, LoginThrottle(env={}).lockout_s) == (5, 60.0)
    for kwargs in ({"max_failures": 0}, {"lockout_s": 0}, {"lockout_s": float("nan")}):
        with pytest.raises(AuthConfigError):
            LoginThrottle(**kwargs, env={})
    with pytest.raises(AuthConfigError, match="must be an integer"):
        LoginThrottle(env={"LATTICE_LOGIN_MAX_FAILURES": "many"})


def test_user_management_is_admin_only_and_refused_in_demo_mode(tmp_path, monkeypatch):
    from core.auth import add_user_to_file, list_users, load_credentials_file
    path = tmp_path / "credentials.yaml"
    monkeypatch.delenv("LATTICE_DEMO", raising=False)
    with pytest.raises(PermissionDenied):
        add_user_to_file(Actor("r", "researcher"), "eve", "s3cret-pass", "admin", path=path)
    assert not path.exists()
    add_user_to_file(Actor("root", "admin"), "Carol", "s3cret-pass", "researcher", path=path)
    creds, _ = load_credentials_file(path)
    assert creds["usernames"]["carol"]["password"].startswith("$2")  # hashed
    assert list_users(path) == [{"username": "carol", "name": "carol", "role": "researcher"}]
    monkeypatch.setenv("LATTICE_DEMO", "1")
    with pytest.raises(AuthConfigError, match="demo mode"):
        add_user_to_file(Actor("root", "admin"), "dave", "s3cret-pass", "viewer", path=path)
