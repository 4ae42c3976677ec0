"""core.auth (no UI): hashing, demo users, role lookup, the refuse-to-start check."""
from __future__ import annotations

import pytest

from core.auth import (AuthConfigError, add_user, demo_credentials, load_auth_config, load_credentials_file,
                       save_credentials_file, verify_password)
from core.auth.credentials import is_hash, role_of
from core.auth.settings import EXAMPLE_COOKIE_KEY
from core.access import Role

KEY = "x" * 48


def test_demo_users_have_hashed_demo_passwords():
    creds = demo_credentials()
    assert set(creds["usernames"]) == {"admin", "researcher", "viewer"}
    for name, user in creds["usernames"].items():
        assert is_hash(user["password"]) and verify_password("demo", user["password"])
        assert role_of(creds, name) == Role(name)
    creds["usernames"]["admin"]["roles"] = ["nonsense"]
    assert role_of(creds, "admin") == Role.VIEWER  # least privilege
    assert role_of(creds, "nobody") is None
    assert demo_credentials()["usernames"]["admin"]["roles"] == ["admin"]  # copies


def test_demo_mode_config():
    cfg = load_auth_config(env={"LATTICE_DEMO": "1"})
    assert cfg.demo and len(cfg.cookie_key) >= 32
    assert cfg.actor("Researcher").role == Role.RESEARCHER


def test_refuses_missing_key_and_missing_file(tmp_path):
    with pytest.raises(AuthConfigError, match="no cookie key.*no credentials file"):
        load_auth_config(env={}, path=tmp_path / "none.yaml")


@pytest.mark.parametrize("key", [EXAMPLE_COOKIE_KEY, "short"])
def test_refuses_example_or_short_key(tmp_path, key):
    path = tmp_path / "c.yaml"
    save_credentials_file(path, add_user({}, "alice", "s3cret-pass", "admin"))
    with pytest.raises(AuthConfigError, match="example key|too short"):
        load_auth_config(cookie_key=key, env={}, path=path)


def test_refuses_demo_password_users(tmp_path):
    path = tmp_path / "c.yaml"
    save_credentials_file(path, demo_credentials())
    with pytest.raises(AuthConfigError, match="public demo password"):
        load_auth_config(env={"LATTICE_COOKIE_KEY": KEY}, path=path)


def test_refuses_plain_text_passwords(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("credentials:\n  usernames:\n    bob: {name: Bob, password: hunter2, roles: [viewer]}\n")
    with pytest.raises(AuthConfigError, match="not a bcrypt hash"):
        load_credentials_file(path)
    with pytest.raises(AuthConfigError):
        save_credentials_file(path, {"usernames": {"bob": {"password": "plain"}}})


def test_good_configuration_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    creds = add_user({}, "Alice", "s3cret-pass", "researcher", name="Alice A.")
    save_credentials_file(path, creds)
    assert oct(path.stat().st_mode)[-3:] == "600"
    cfg = load_auth_config(cookie_key=KEY, env={}, path=path)
    assert not cfg.demo and cfg.cookie_key == KEY
    assert cfg.actor("alice").role == Role.RESEARCHER
    assert verify_password("s3cret-pass", cfg.credentials["usernames"]["alice"]["password"])
    with pytest.raises(AuthConfigError, match="demo"):
        add_user(creds, "bob", "demo", "viewer")



def test_api_server_start_check_needs_real_credentials_but_no_cookie_key(tmp_path):
    from core.auth import check_api_credentials
    check_api_credentials(env={"LATTICE_DEMO": "1"})  # demo mode: the demo users
    with pytest.raises(AuthConfigError, match="no credentials file"):
        check_api_credentials(env={}, path=tmp_path / "none.yaml")
    demo = tmp_path / "demo.yaml"
    save_credentials_file(demo, demo_credentials())
    with pytest.raises(AuthConfigError, match="public demo password"):
        check_api_credentials(env={}, path=demo)
    real = tmp_path / "real.yaml"
    save_credentials_file(real, add_user({}, "alice", "s3cret-pass", "admin"))
    check_api_credentials(env={}, path=real)  # no cookie key needed: the API has no cookie
