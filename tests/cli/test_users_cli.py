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


def test_a_closed_input_is_a_user_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    def closed(prompt=""):
        raise EOFError
    monkeypatch.setattr(getpass, "getpass", closed)
    path = tmp_path / "creds.yaml"
    assert main(["users", "add-user", "alice", "--role", "researcher", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no password was given") and "Traceback" not in err and not path.exists()


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    import os
    import subprocess
    import sys
    env = {**os.environ, "LATTICE_DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}"}
    proc = subprocess.Popen([sys.executable, "-m", "core", "lattices", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader is gone before anything is written (`... | head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err
