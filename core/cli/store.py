"""Store commands: ``db``, ``import``, ``export``, ``backup`` (one-off, or ``--schedule``: core.cli.schedule),
``restore``, ``log``, ``lattices``.

They act on the database of ``LATTICE_DATABASE_URL`` (default ``data/lattice.db``) as the
``system`` actor (the operator owns the files). ``demo`` and ``simulate`` (core.cli.engine) and
``keys``, ``reembed``, ``audit`` (core.cli.security) use the same store.
"""
from __future__ import annotations

import argparse
import json
import sys

from core.access import SYSTEM
from core.cli.common import add_actions, add_json_and_handler, emit, open_store, say, store_progress
from core.cli.schedule import add_schedule_flags, cmd_backup_schedule, misused_flags
from core.errors import LatticeError, ValidationError

PRESETS = ("seed", "memory", "archive")  # core.engine.PRESET_NAMES (not imported: `--help` loads no numpy)


def cmd_db(args: argparse.Namespace) -> int:
    from core.store import SchemaError, check_known, create_db_engine, current_revision, head_revision, upgrade
    engine = create_db_engine()
    try:
        if args.db_command == "upgrade":
            before = current_revision(engine)
            rev = upgrade(engine, args.revision)
            emit(args, {"url": engine.url.render_as_string(), "from": before, "to": rev},
                 f"database {engine.url.render_as_string()}: schema {before or 'empty'} -> {rev}")
        else:
            rev, head = current_revision(engine), head_revision()
            state = "current" if rev == head else ("empty" if rev is None else "needs upgrade")
            try:
                check_known(engine)
            except SchemaError:
                state = "newer than this code"
            emit(args, {"url": engine.url.render_as_string(), "current": rev, "head": head, "state": state},
                 f"database {engine.url.render_as_string()}: revision {rev or '-'} (code head {head}): {state}")
    finally:
        engine.dispose()
    return 0


def cmd_db_verify(args: argparse.Namespace) -> int:
    """The recovery verification (core.store.verify_recovery), e.g. after putting back a database
    backup or a PITR: exit 0 when it passed, 1 when a check failed (the store then refuses writes)."""
    from core.store import verify_recovery
    with open_store() as store:
        report = verify_recovery(store, reason=args.reason, actor=SYSTEM)
    emit(args, report.as_dict(), report.summary())
    return 0 if report.ok else 1


def cmd_db_backup(args: argparse.Namespace) -> int:
    with open_store() as store:
        out = store.backup_database(args.out, SYSTEM)
    emit(args, out, f"database backup {out['path']}: {out['bytes']:,} bytes, {len(out['lattices'])} lattice(s), "
                    f"sha256 {out['sha256'][:16]}...")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    with store_progress(args, "embedding") as progress, open_store() as store:
        report = store.import_path(args.lattice, args.path, SYSTEM, split_headings=args.split_headings,
                                   skip_bad=args.skip_bad, edges=args.edges, embedder=args.embedder,
                                   preset=args.preset, clock=args.clock, format=args.format, progress=progress)
    for issue in report.skipped:
        say(f"skipped: {issue}", file=sys.stderr)
    emit(args, report.to_dict(),
         f"imported {report.imported} gems and {report.edges} entanglements into lattice {report.lattice!r}"
         + (f"; skipped {len(report.skipped)} bad rows" if report.skipped else ""))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_store() as store:
        out = store.export(args.lattice, args.out, include_archived=args.include_archived)
    emit(args, out, f"exported {out['gems']} gems of {args.lattice!r} to {out['path']}"
         + (f" and {out['entanglements']} entanglements to {out['entanglements_path']}"
            if out["entanglements"] else ""))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    if args.schedule:
        return cmd_backup_schedule(args)
    if misused_flags(args):
        raise LatticeError(f"{', '.join(misused_flags(args))} belong to scheduled snapshots: add --schedule")
    if len(args.lattice or ()) != 1 or not args.out:
        raise LatticeError("a one-off backup needs one --lattice NAME and --out FILE_OR_FOLDER (or run scheduled "
                           "snapshots with --schedule)")
    args.lattice = args.lattice[0]
    with open_store() as store:
        out = store.backup(args.lattice, args.out, SYSTEM)
    emit(args, out, f"snapshot of {args.lattice!r} ({out['gems']} gems, t={out['t']:.6g}, version {out['version']}) "
         f"written to {out['path']} (manifest sha256 {out['sha256'][:16]}...)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    with open_store() as store:
        out = store.restore(args.path, SYSTEM, name=args.lattice, overwrite=args.force)
    emit(args, out, f"restored lattice {out['lattice']!r} ({out['gems']} gems, t={out['t']:.6g}) from {out['path']}; "
         f"now version {out['version']}")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise ValidationError("limit", f"must be >= 0 (0 = all), got {args.limit}")
    with open_store() as store:
        df = store.transactions(args.lattice, kinds=args.kind, limit=args.limit)
    records = json.loads(df.to_json(orient="records", date_format="iso"))
    lines = [f"{r['id']:>6}  t={r['lattice_t']:<10.6g} v{r['lattice_version']:<5} {r['kind']:<14} {r['actor']:<10} "
             f"{len(r['gem_ids'] or [])} gem(s) {', '.join((r['gem_ids'] or [])[:3])}" for r in records]
    emit(args, records, lines or f"no log entries for {args.lattice!r}")
    return 0


def cmd_lattices(args: argparse.Namespace) -> int:
    with open_store() as store:
        infos = store.list_lattices()
    emit(args, [i.to_dict() for i in infos],
         [f"{i.name:<24} {i.gems:>7} gems  t={i.t:<10.6g} v{i.version:<6} {i.clock:<6} {i.embedder}"
          for i in infos] or "no lattices (run `python -m core demo` or `python -m core import`)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    dsub = add_actions(sub, "db", "database schema (upgrade, current) and whole-database backup")
    up = dsub.add_parser("upgrade", help="apply the migrations (an empty database gets the full schema)")
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    add_json_and_handler(up, cmd_db)
    cur = dsub.add_parser("current", help="show the database's schema revision and the code's")
    add_json_and_handler(cur, cmd_db)
    bk = dsub.add_parser("backup", help="copy the whole SQLite database while it is in use (PostgreSQL: pg_dump)")
    bk.add_argument("--out", required=True, help="backup file, or a folder for lattice-<time>.db")
    add_json_and_handler(bk, cmd_db_backup)
    vf = dsub.add_parser("verify", help="check the database after a restore, PITR or failover (schema, lattice "
                                        "versions and clocks against the log, snapshot checksums); audited")
    vf.add_argument("--reason", default="manual", help="why, for the audit log (default: manual)")
    add_json_and_handler(vf, cmd_db_verify)

    p = sub.add_parser("import", help="import gems from a .jsonl/.csv file, a chat transcript or a folder of "
                                      ".md/.txt files (rows may carry created_at: ISO 8601 with a zone, or lattice t)")
    p.add_argument("path", metavar="FILE_OR_DIR")
    p.add_argument("--lattice", required=True, help="lattice name (created if missing)")
    p.add_argument("--split-headings", action="store_true", help="Markdown: one gem per top-level heading")
    p.add_argument("--skip-bad", action="store_true", help="skip bad rows (reported) instead of failing the import")
    p.add_argument("--edges",
                   help="entanglements CSV (source,target,weight); default <stem>.entanglements.csv if present")
    p.add_argument("--embedder", default=None, help="embedder of a new lattice (default: hashing-v2 for the memory "
                                                  "preset, hashing-v1 otherwise)")
    p.add_argument("--preset", choices=PRESETS,
                   help="preset of a lattice the import creates: seed (the seed's dynamics; default for a manual "
                        "clock), memory (half-lives of days; default for a wall clock) or archive (no decay); for "
                        "an existing lattice it must match its preset")
    p.add_argument("--clock", choices=("manual", "wall"),
                   help="clock of a lattice the import creates (default manual; wall: follows real time)")
    p.add_argument("--format", choices=("auto", "gems", "chat"), default="auto",
                   help="what a .jsonl holds: gem rows or a chat transcript (rows of time, speaker, text, optional "
                        "session); default: detected from the first row")
    add_json_and_handler(p, cmd_import, "the report")

    p = sub.add_parser("export", help="export a lattice's gems (.jsonl or .csv) and entanglements")
    p.add_argument("--lattice", required=True)
    p.add_argument("--out", required=True, help="output file, .jsonl or .csv")
    p.add_argument("--include-archived", action="store_true", help="also export archived gems")
    add_json_and_handler(p, cmd_export)

    p = sub.add_parser("backup", help="write a consistent snapshot with a sha256 manifest, or take them on a "
                                      "schedule with retention (--schedule)")
    p.add_argument("--lattice", action="extend", nargs="+", metavar="NAME",
                   help="the lattice (with --schedule: one or more)")
    p.add_argument("--out", help="snapshot file (or a folder to write it into); not with --schedule")
    add_schedule_flags(p)
    add_json_and_handler(p, cmd_backup, "the result (--schedule: a line per snapshot)")

    p = sub.add_parser("restore", help="verify a snapshot and restore it atomically")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--lattice", help="restore under this name (default: the snapshot's lattice)")
    p.add_argument("--force", action="store_true", help="replace the lattice if it exists (refused without it)")
    add_json_and_handler(p, cmd_restore)

    p = sub.add_parser("log", help="show a lattice's transaction log")
    p.add_argument("--lattice", required=True)
    p.add_argument("--limit", type=int, default=50, help="newest N entries (default 50; 0 = all)")
    p.add_argument("--kind", action="append", help="only these kinds (evolve, observe, edit, import, ...)")
    add_json_and_handler(p, cmd_log, "the entries")

    p = sub.add_parser("lattices", help="list the lattices in the database")
    add_json_and_handler(p, cmd_lattices, "them")
