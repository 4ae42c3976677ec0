"""User commands: ``users add-user NAME --role ROLE`` and ``users hash`` (the login's credentials file).

Passwords are read from the terminal (never from the command line) and stored as bcrypt
hashes in ``.streamlit/credentials.yaml`` (or ``LATTICE_CREDENTIALS``, or ``--file``).
"""
from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from core.access import Role
from core.cli.common import add_actions, say


def _ask(prompt: str) -> str:
    """A password from the terminal (or one line of a pipe); a closed input is a user error, not a crash."""
    try:
        return getpass.getpass(prompt)
    except EOFError:
        from core.auth import AuthConfigError
        raise AuthConfigError("no password was given (standard input is closed); run the command in a "
                              "terminal, or pipe the password in twice, one per line") from None


def cmd_users(args: argparse.Namespace) -> int:
    from core.auth import (AuthConfigError, add_user, credentials_path, hash_password, load_credentials_file,
                           save_credentials_file)
    password = _ask("password: ")
    if args.users_command == "hash":
        print(hash_password(password))
        return 0
    if password != _ask("again: "):
        raise AuthConfigError("the passwords differ")
    path = args.file or credentials_path()
    credentials, cookie = load_credentials_file(path) if path.exists() else ({"usernames": {}}, None)
    add_user(credentials, args.username, password, args.role, args.name, args.email)
    save_credentials_file(path, credentials, cookie)
    say(f"user {args.username!r} ({args.role}) written to {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    usub = add_actions(sub, "users", "the login's users: add or replace one, or hash a password")
    add = usub.add_parser("add-user", help="add or replace a user in the credentials file")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--name")
    add.add_argument("--email")
    add.add_argument("--file", type=Path, default=None, help="credentials file (default .streamlit/credentials.yaml)")
    add.set_defaults(handler=cmd_users)
    h = usub.add_parser("hash", help="print the bcrypt hash of a password read from the terminal")
    h.set_defaults(handler=cmd_users)
