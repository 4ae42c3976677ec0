"""``python -m core users``: add a user to the credentials file, hash a password; user errors exit 2."""
from __future__ import annotations

import getpass

from core.access import Role
from core.auth import load_credentials_file, verify_password
from core.auth.credentials import role_of
from core.cli import main


def test_add_user(tmp_path, monkeypatch, capsys):
    path = tmp_path / "c.yaml"
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "another-pass")
    assert main(["users", "add-user", "carol", "--role", "viewer", "--file", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"user 'carol' (viewer) written to {path}"
    creds, _ = load_credentials_file(path)
    assert role_of(creds, "carol") == Role.VIEWER


def test_hash_prints_a_bcrypt_hash(monkeypatch, capsys):
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "another-pass")
    assert main(["users", "hash"]) == 0
    assert verify_password("another-pass", capsys.readouterr().out.strip())


def test_user_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    answers = iter(["first-pass", "second-pass"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    path = tmp_path / "c.yaml"
    assert main(["users", "add-user", "dave", "--role", "admin", "--file", str(path)]) == 2
    assert capsys.readouterr().err == "error: the passwords differ\n" and not path.exists()
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "demo")
    assert main(["users", "add-user", "dave", "--role", "admin", "--file", str(path)]) == 2
    assert "public demo password" in capsys.readouterr().err and not path.exists()
