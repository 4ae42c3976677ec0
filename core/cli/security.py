"""Security and maintenance commands: ``keys`` (generate / rotate / status; the JWT actions are
core.cli.api_keys'), ``reembed``, ``audit``.

Like the store commands (core.cli.store) they act on the database of ``LATTICE_DATABASE_URL``
as the ``system`` actor.
"""
from __future__ import annotations

import argparse
import json

from core.access import SYSTEM
from core.cli import api_keys
from core.cli.common import add_actions, add_json_and_handler, emit, open_store, store_progress


def cmd_keys(args: argparse.Namespace) -> int:
    if args.keys_command == "generate":
        from core.store import generate_key
        # The only place a key is ever printed: put it first in LATTICE_ENCRYPTION_KEYS.
        print(generate_key())
        return 0
    with open_store() as store:
        if args.keys_command == "status":
            out = store.encryption_status()
            emit(args, {**out, "keys_configured": len(store.cipher.keys)},
                 f"{len(store.cipher.keys)} key(s) configured; {out['gems']} gems: {out['current_key']} under the "
                 f"newest key, {out['older_key']} under an older key, {out['plaintext']} in plain text")
            return 0
        with store_progress(args, "re-encrypting") as progress:
            out = store.rotate_keys(SYSTEM, batch_size=args.batch_size, progress=progress)
    emit(args, out, f"re-encrypted {out['rotated']} gems ({out['skipped']} already under the newest key) and "
         f"{out['log_entries']} log entries; older keys may now be removed from LATTICE_ENCRYPTION_KEYS")
    return 0


def cmd_reembed(args: argparse.Namespace) -> int:
    with store_progress(args, "embedding") as progress, open_store() as store:
        info = store.reembed(args.lattice, args.embedder, SYSTEM, batch_size=args.batch_size, progress=progress)
    emit(args, info.to_dict(), f"re-embedded lattice {info.name!r} ({info.gems + info.archived} gems) with "
         f"{info.embedder} (dimension {info.dim}); now version {info.version}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    with open_store() as store:
        df = store.audit_log(limit=args.limit, action=args.action)
    records = json.loads(df.to_json(orient="records", date_format="iso"))
    lines = [f"{r['id']:>5}  {r['wall_time']}  {r['actor']:<12} {r['role']:<10} {r['action']:<16} "
             f"{r['outcome']:<8} {r['target']}" for r in records]
    emit(args, records, lines or "the audit log is empty")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    ksub = add_actions(sub, "keys", "encryption at rest: generate a key, rotate, status; JWT signing keys")
    g = ksub.add_parser("generate", help="print a new Fernet key (put it first in LATTICE_ENCRYPTION_KEYS)")
    g.set_defaults(handler=cmd_keys)
    r = ksub.add_parser("rotate", help="re-encrypt every gem under the newest key (resumable: rerun if interrupted)")
    r.add_argument("--batch-size", type=_positive, default=500, help="rows per committed batch (default 500)")
    add_json_and_handler(r, cmd_keys, "the counts")
    st = ksub.add_parser("status", help="how many gems are under the newest key, an older key, or in plain text")
    add_json_and_handler(st, cmd_keys, "the counts")
    api_keys.register_jwt(ksub)  # jwt-rotate, jwt-retire, jwt-list

    p = sub.add_parser("reembed", help="re-embed every gem of a lattice with another embedder (all or nothing)")
    p.add_argument("--lattice", required=True)
    p.add_argument("--embedder", required=True, help="embedder name, e.g. hashing-v1, hashing-v1-256, all-minilm-l6-v2")
    p.add_argument("--batch-size", type=_positive, default=256, help="texts per embedding batch (default 256)")
    add_json_and_handler(p, cmd_reembed, "the lattice info")

    p = sub.add_parser("audit", help="show the audit log of administrative actions (newest first)")
    p.add_argument("--limit", type=_positive, default=50)
    p.add_argument("--action", help="only this action (lattice.restore, keys.rotate, user.create, ...)")
    add_json_and_handler(p, cmd_audit, "the entries")
