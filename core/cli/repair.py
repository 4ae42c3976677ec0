"""``repair``: reset a damaged lattice's non-finite or out-of-range state (admin, as ``system``).

Phases that are finite but beyond +-1e12 rad are wrapped mod 2 pi; every other bad field
(energy, phase, coherence, uncertainty) goes back to its default, a bad clock to 0
(core.store.repair). One transaction, logged as an ``edit`` and recorded in the audit log.
"""
from __future__ import annotations

import argparse

from core.access import SYSTEM
from core.cli.common import add_json_and_handler, emit, open_store


def cmd_repair(args: argparse.Namespace) -> int:
    with open_store() as store:
        out = store.repair(args.lattice, SYSTEM, dry_run=args.dry_run)
    verb = "would repair" if out["dry_run"] else "repaired"
    lines = [f"{c['gem']}: " + ", ".join(f"{f} {v['before']} -> {v['after']}" for f, v in c["fields"].items())
             for c in out["repaired"]]
    if out["clock"] is not None:
        lines.append(f"lattice clock: {out['clock']['before']} -> {out['clock']['after']}")
    head = (f"lattice {out['lattice']!r}: nothing to repair" if not lines else
            f"lattice {out['lattice']!r}: {verb} {len(out['repaired'])} gem(s)"
            + (" (dry run: nothing was written)" if out["dry_run"] else f"; now version {out['version']}"))
    emit(args, out, [head] + lines)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("repair", help="reset a lattice's non-finite or out-of-range gem state (admin; audited)")
    p.add_argument("--lattice", required=True)
    p.add_argument("--dry-run", action="store_true", help="only list what would be repaired")
    add_json_and_handler(p, cmd_repair, "what was (or would be) repaired")
