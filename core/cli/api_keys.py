"""The API's credentials: ``keys jwt-rotate | jwt-retire KID | jwt-list`` (the JWT signing keys) and
``apikeys create NAME --role ROLE | list | revoke ID`` (programs' API keys).

Like the other store commands they act on the database of ``LATTICE_DATABASE_URL`` as the
``system`` actor (the operator owns the database); every change is in the audit log. The
signing keys are shared by every API node through that database: a rotation is picked up by
the other nodes within seconds.
"""
from __future__ import annotations

import argparse
from datetime import datetime, timezone

from core.access import SYSTEM, Role
from core.cli.common import add_actions, add_json_and_handler, emit, open_store


def _when(seconds: float | None) -> str:
    """Epoch seconds as a UTC time for the human output ("-" for none)."""
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _service(store):
    from core.auth import TokenService
    return TokenService.from_env(store)


def cmd_jwt(args: argparse.Namespace) -> int:
    with open_store() as store:
        service = _service(store)
        if args.keys_command == "jwt-rotate":
            previous = next((k["kid"] for k in service.signing_keys() if k["state"] == "active"), None)
            kid, window = service.rotate_signing_key(SYSTEM), service.keys.window_s
            old = f"; {previous} keeps verifying the tokens it signed for {window:g} s" if previous else ""
            emit(args, {"kid": kid, "previous": previous, "verify_window_s": window},
                 f"new JWT signing key {kid} is active{old}; the other API nodes use it within "
                 f"{service.keys.cache_s:g} s")
        elif args.keys_command == "jwt-retire":
            key = service.retire_signing_key(SYSTEM, args.kid)
            emit(args, key, f"JWT signing key {key['kid']} is retired: tokens it signed are refused from now on")
        else:
            keys = service.signing_keys()
            lines = [f"{k['kid']:<18} {k['state']:<9} created {_when(k['created_at'])}  superseded "
                     f"{_when(k['superseded_at'])}  retired {_when(k['retired_at'])}" for k in keys]
            emit(args, keys, lines or "no JWT signing key yet (the first token request or `keys jwt-rotate` makes one)")
    return 0


def cmd_apikeys(args: argparse.Namespace) -> int:
    from core.auth import create_api_key, list_api_keys, revoke_api_key
    with open_store() as store:
        if args.apikeys_command == "create":
            new = create_api_key(store, SYSTEM, args.name, args.role)
            emit(args, new.to_dict(), f"API key {new.id} ({new.name!r}, {new.role}) created; it is shown only "
                 f"this once, store it now:\n{new.key}")
        elif args.apikeys_command == "revoke":
            key = revoke_api_key(store, SYSTEM, args.id)
            emit(args, key, f"API key {key['id']} ({key['name']!r}) is revoked, with its refresh tokens")
        else:
            keys = list_api_keys(store)
            lines = [f"{k['id']}  {k['role']:<10} {'revoked' if k['revoked_at'] else 'active':<8} "
                     f"created {_when(k['created_at'])} by {k['created_by']}  last used {_when(k['last_used_at'])}  "
                     f"{k['name']}" for k in keys]
            emit(args, keys, lines or "no API keys (create one with `python -m core apikeys create NAME --role ROLE`)")
    return 0


def register_jwt(ksub: argparse._SubParsersAction) -> None:
    """The JWT actions of the ``keys`` command (core.cli.security creates it)."""
    r = ksub.add_parser("jwt-rotate", help="make a new JWT signing key active (the previous one verifies until "
                                           "its tokens expire)")
    add_json_and_handler(r, cmd_jwt, "the new kid")
    t = ksub.add_parser("jwt-retire", help="refuse every token signed with a (superseded) JWT signing key")
    t.add_argument("kid", help="the key id (see keys jwt-list)")
    add_json_and_handler(t, cmd_jwt, "the retired key")
    ls = ksub.add_parser("jwt-list", help="the JWT signing keys and their state (active, previous, expired, retired)")
    add_json_and_handler(ls, cmd_jwt, "the keys")


def register(sub: argparse._SubParsersAction) -> None:
    asub = add_actions(sub, "apikeys", "programs' API keys for the REST/MCP API: create, list, revoke")
    c = asub.add_parser("create", help="create a key (printed once; only its hash is stored)")
    c.add_argument("name", help="what program uses it, e.g. nightly-import")
    c.add_argument("--role", required=True, choices=[r.value for r in Role])
    add_json_and_handler(c, cmd_apikeys, "the key (with its secret)")
    ls = asub.add_parser("list", help="every key (never the secrets)")
    add_json_and_handler(ls, cmd_apikeys, "the keys")
    rv = asub.add_parser("revoke", help="refuse a key and its refresh tokens from now on")
    rv.add_argument("id", help="the key id (the part after glk_, see apikeys list)")
    add_json_and_handler(rv, cmd_apikeys, "the revoked key")
