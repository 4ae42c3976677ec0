"""``python -m core backup --schedule``: scheduled snapshots as a long-running service.

Every ``--every`` (slots aligned to the epoch: hourly ones on the hour, UTC) it snapshots the
chosen lattices and/or the whole SQLite database into ``--dir``, verifies each, re-verifies
the kept ones and rotates them by ``--keep-last`` / ``--keep-daily``
(core.service.SnapshotScheduler). One line per snapshot on stdout (a JSON object per line
with ``--json``); errors also go to stderr. SIGTERM or Ctrl-C stop it cleanly: a snapshot
being written is finished and catalogued first (a second Ctrl-C stops at once). ``--once``
runs the current slot and exits (for cron): exit code 1 if a snapshot failed or is corrupt.
With ``LATTICE_METRICS_PORT`` set, the snapshot gauges are served for Prometheus.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from core.cli.common import clean, open_store, say
from core.errors import LatticeError

SCHEDULE_ONLY = ("every", "keep_last", "keep_daily", "dir", "all", "database", "once")


def add_schedule_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scheduled snapshots (--schedule)")
    g.add_argument("--schedule", action="store_true",
                   help="run as a service: snapshot every --every, verify, rotate (stop with Ctrl-C or SIGTERM)")
    g.add_argument("--every", help="interval, e.g. 1h, 15min, 1d (default LATTICE_SNAPSHOT_EVERY, else 1h)")
    g.add_argument("--keep-last", type=int, help="keep the newest N verified snapshots (default "
                                                 "LATTICE_SNAPSHOT_KEEP_LAST, else 7)")
    g.add_argument("--keep-daily", type=int, help="plus the newest of each of the last D days (default "
                                                  "LATTICE_SNAPSHOT_KEEP_DAILY, else 7; 0 = none)")
    g.add_argument("--dir", help="snapshot folder with its catalog.json (default LATTICE_SNAPSHOT_DIR, else "
                                 "data/snapshots)")
    g.add_argument("--all", action="store_true", help="every lattice (new ones included)")
    g.add_argument("--database", action="store_true", help="also copy the whole SQLite database")
    g.add_argument("--once", action="store_true", help="take the current slot's snapshots and exit")


def misused_flags(args: argparse.Namespace) -> list[str]:
    """Schedule flags given without --schedule (refused: they would be silently ignored)."""
    return [f"--{n.replace('_', '-')}" for n in SCHEDULE_ONLY if getattr(args, n) not in (None, False)]


def _schedule(args: argparse.Namespace):
    from core.service import RetentionPolicy, SnapshotSchedule, parse_every, snapshot_folder

    env = os.environ

    def number(value: int | None, var: str) -> int:
        raw = value if value is not None else env.get(var, "").strip() or 7
        try:
            return int(raw)
        except ValueError:
            raise LatticeError(f"{var}={raw!r} is not a whole number") from None

    every = args.every or env.get("LATTICE_SNAPSHOT_EVERY", "").strip() or "1h"
    policy = RetentionPolicy(number(args.keep_last, "LATTICE_SNAPSHOT_KEEP_LAST"),
                             number(args.keep_daily, "LATTICE_SNAPSHOT_KEEP_DAILY"))
    return SnapshotSchedule(folder=Path(args.dir) if args.dir else snapshot_folder(), every_s=parse_every(every,
                            "--every"), policy=policy, lattices=tuple(args.lattice or ()), all_lattices=args.all,
                            database=args.database)


def _printer(args: argparse.Namespace):
    """One line per snapshot, deletion and corruption found (flushed: a service's log)."""
    def line(event: str, e, text: str) -> None:
        if args.json:
            print(json.dumps({"event": event, **vars(e)}, default=str))
        else:
            say(text)

    def show(report) -> None:
        for e in report.taken:
            details = (f", {e.gems} gems, version {e.version}" if e.gems is not None else "")
            line("snapshot", e, f"{_when(e.created_at)} {e.target}: snapshot verified, {e.bytes:,} bytes{details}, "
                                f"sha256 {e.sha256[:16]}... ({e.seconds:.2f} s) -> {e.file}" if e.status == "ok"
                 else f"{_when(e.created_at)} {e.target}: snapshot {e.status.upper()}: {e.error}")
        for e in report.found_corrupt:
            line("corrupt", e, f"{e.target}: snapshot {e.file} is CORRUPT ({e.error}); kept for inspection")
        for e in report.deleted:
            line("deleted", e, f"{e.target}: deleted {e.file} (retention)")
        sys.stdout.flush()
    return show


def _when(seconds: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and the first Ctrl-C set ``stop`` (the snapshot under way finishes); a second
    Ctrl-C interrupts at once."""
    def handle(signum, frame):
        if signum == signal.SIGINT and stop.is_set():
            raise KeyboardInterrupt
        stop.set()  # os.write: print() from a handler can collide with a print under way
        os.write(2, f"stopping ({signal.Signals(signum).name}): finishing the snapshot under way\n".encode())
    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def cmd_backup_schedule(args: argparse.Namespace) -> int:
    from core.service import SnapshotScheduler

    if args.out:
        raise LatticeError("--out is for a one-off backup; scheduled snapshots go into --dir (with their catalog)")
    schedule = _schedule(args)
    with open_store() as store:
        scheduler = SnapshotScheduler(store, schedule, on_report=_printer(args))
        if args.once:
            report = scheduler.run_once()
            if not report.taken and not args.json:
                say(f"nothing to do: this slot's snapshots were taken already ({', '.join(report.skipped)})")
            return 0 if all(e.status == "ok" for e in report.taken) and not report.found_corrupt else 1
        _serve_metrics(scheduler)
        stop = threading.Event()
        _stop_on_signals(stop)
        print(clean(f"scheduled snapshots: {schedule.describe()} (stop with Ctrl-C or SIGTERM)"), file=sys.stderr,
              flush=True)
        scheduler.run(stop)
    print("stopped", file=sys.stderr, flush=True)
    return 0


def _serve_metrics(scheduler) -> None:
    from core.monitoring import WorkbenchCollector, metrics_port, start_exporter
    port = metrics_port()
    if port is not None:
        start_exporter(port, WorkbenchCollector(snapshots=scheduler.status))
        print(f"snapshot metrics on http://127.0.0.1:{port}/metrics", file=sys.stderr, flush=True)
