"""``pitr``: point-in-time recovery of a PostgreSQL database to a wall-clock time into a new
server (core.store.pitr): a base backup plus the WAL archive, replayed up to ``--target-time``
and promoted on ``--port``. The server being recovered from is never touched.

    python -m core pitr --base /backups/base-2026-05-01 --wal-archive /backups/wal \\
        --target-time 2026-05-01T14:30:00+00:00 --datadir /srv/pg/recovered --port 5433 [--start]

Without ``--start`` it prepares the directory and prints the ``pg_ctl`` command to start it
(as the server's user); with ``--start`` it also starts the server and waits until it has
replayed to the target and promoted (not as root: PostgreSQL refuses to run as root).
"""
from __future__ import annotations

import argparse
import os
import subprocess

from core.cli.common import add_json_and_handler, emit
from core.errors import LatticeError


def cmd_pitr(args: argparse.Namespace) -> int:
    from core.store import RecoveryError, prepare_pitr, wait_for_recovery

    if args.start and os.geteuid() == 0:
        raise LatticeError("--start as root: PostgreSQL refuses to run as root; run this command as the server's "
                           "user (e.g. `runuser -u postgres -- python -m core pitr ...`) - nothing was written")
    plan = prepare_pitr(args.base, args.wal_archive, args.target_time, args.datadir, args.port)
    start = plan.start_command()
    out = {"datadir": str(plan.datadir), "port": plan.port, "target_time": plan.target_time.isoformat(),
           "backup_started": plan.backup_started.isoformat() if plan.backup_started else None,
           "start_command": start, "started": False}
    lines = [f"prepared {plan.datadir}: replay of {plan.wal_archive} from the base backup {plan.base} "
             f"(started {out['backup_started'] or 'at an unknown time'}) up to {out['target_time']}, then promote, "
             f"on port {plan.port}"]
    if not args.start:
        lines.append("start it as the server's user: " + " ".join(start))
        emit(args, out, lines)
        return 0
    proc = subprocess.run(start, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RecoveryError(f"pg_ctl could not start the recovered server: {(proc.stderr or proc.stdout).strip()}; "
                            f"see {plan.log}")
    result = wait_for_recovery(plan.datadir, timeout_s=args.timeout, log=plan.log)
    out.update(started=True, seconds=round(result.seconds, 3), stopped=result.stopped)
    lines.append(f"recovered and promoted in {result.seconds:.1f} s: {result.stopped or 'see ' + str(plan.log)}")
    lines.append(f"check it: LATTICE_DATABASE_URL=postgresql+psycopg://USER@127.0.0.1:{plan.port}/DATABASE "
                 "python -m core lattices")
    emit(args, out, lines)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pitr", help="PostgreSQL point-in-time recovery to a wall-clock time, into a new server")
    p.add_argument("--base", required=True, help="a plain-format base backup (pg_basebackup -D DIR) taken before "
                                                 "the target time")
    p.add_argument("--wal-archive", required=True, help="the directory the primary's archive_command copies into")
    p.add_argument("--target-time", required=True, help="ISO 8601 with a zone, e.g. 2026-05-01T14:30:00+00:00: "
                                                        "the last commit at or before it is kept")
    p.add_argument("--datadir", required=True, help="a new (or empty) directory for the recovered server")
    p.add_argument("--port", required=True, type=int, help="TCP port of the recovered server (127.0.0.1)")
    p.add_argument("--start", action="store_true", help="start it with pg_ctl and wait until it has promoted")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the recovery (default 600)")
    add_json_and_handler(p, cmd_pitr, "the prepared (and recovered) server")
