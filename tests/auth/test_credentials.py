"""core/auth.py (no UI): hashing, demo users, role lookup, the refuse-to-start check.

(Lives in tests/ui because this stage owns only tests/ui and tests/browser.)
"""
from __future__ import annotations

import pytest

from core.auth import credentials as auth
from core.access import Role

KEY = "x" * 48


def test_demo_users_have_hashed_demo_passwords():
    creds = auth.demo_credentials()
    assert set(creds["usernames"]) == {"admin", "researcher", "viewer"}
    for name, user in creds["usernames"].items():
        assert auth.is_hash(user["password"]) and auth.verify_password("demo", user["password"])
        assert auth.role_of(creds, name) == Role(name)
    creds["usernames"]["admin"]["roles"] = ["nonsense"]
    assert auth.role_of(creds, "admin") == Role.VIEWER  # least privilege
    assert auth.role_of(creds, "nobody") is None
    assert auth.demo_credentials()["usernames"]["admin"]["roles"] == ["admin"]  # copies


def test_demo_mode_config():
    cfg = auth.load_auth_config(env={"LATTICE_DEMO": "1"})
    assert cfg.demo and len(cfg.cookie_key) >= 32
    assert cfg.actor("Researcher").role == Role.RESEARCHER


def test_refuses_missing_key_and_missing_file(tmp_path):
    with pytest.raises(auth.AuthConfigError, match="no cookie key.*no credentials file"):
        auth.load_auth_config(env={}, path=tmp_path / "none.yaml")


@pytest.mark.parametrize("key", [auth.EXAMPLE_COOKIE_KEY, "short"])
def test_refuses_example_or_short_key(tmp_path, key):
    path = tmp_path / "c.yaml"
    auth.save_credentials_file(path, auth.add_user({}, "alice", "s3cret-pass", "admin"))
    with pytest.raises(auth.AuthConfigError, match="example key|too short"):
        auth.load_auth_config(cookie_key=key, env={}, path=path)


def test_refuses_demo_password_users(tmp_path):
    path = tmp_path / "c.yaml"
    auth.save_credentials_file(path, auth.demo_credentials())
    with pytest.raises(auth.AuthConfigError, match="public demo password"):
        auth.load_auth_config(env={"LATTICE_COOKIE_KEY": KEY}, path=path)


def test_refuses_plain_text_passwords(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("credentials:\n  usernames:\n    bob: {name: Bob, password: hunter2, roles: [viewer]}\n")
    with pytest.raises(auth.AuthConfigError, match="not a bcrypt hash"):
        auth.load_credentials_file(path)
    with pytest.raises(auth.AuthConfigError):
        auth.save_credentials_file(path, {"usernames": {"bob": {"password": "plain"}}})


def test_good_configuration_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    creds = auth.add_user({}, "Alice", "s3cret-pass", "researcher", name="Alice A.")
    auth.save_credentials_file(path, creds)
    assert oct(path.stat().st_mode)[-3:] == "600"
    cfg = auth.load_auth_config(cookie_key=KEY, env={}, path=path)
    assert not cfg.demo and cfg.cookie_key == KEY
    assert cfg.actor("alice").role == Role.RESEARCHER
    assert auth.verify_password("s3cret-pass", cfg.credentials["usernames"]["alice"]["password"])
    with pytest.raises(auth.AuthConfigError, match="demo"):
        auth.add_user(creds, "bob", "demo", "viewer")


def test_cli_add_user(tmp_path, monkeypatch, capsys):
    path = tmp_path / "c.yaml"
    monkeypatch.setattr(auth.getpass, "getpass", lambda prompt="": "another-pass")
    assert auth.main(["add-user", "carol", "--role", "viewer", "--file", str(path)]) == 0
    creds, _ = auth.load_credentials_file(path)
    assert auth.role_of(creds, "carol") == Role.VIEWER
