"""Timestamped import benchmark (issue 13): 100k gems with ``created_at`` against the same import
without timestamps, as a ratio measured in one run. Goal: ratio <= 1.5.

The timestamped file is the plain one plus an ISO 8601 ``created_at`` per row (UTC, a year of
history in time order), so the difference is the time work alone: parsing the instants, the
order and future checks (column-wise per batch), the closed-form ageing (``age_in_place``) and
the two extra state columns. Each run goes into a new lattice under the ``memory`` preset in a
fresh empty database (SQLite file; PostgreSQL schema with ``--db postgresql``), alternating
plain and timed runs and keeping each one's best of ``--repeat``.

Run: ``python -m benchmarks.time_import`` (``--quick``: 10k gems; ``--n N``; ``--json``). Prints
one line per database and, last, one JSON line of the results.
"""
from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchmarks.store import DATABASES, Unavailable, database, make_gems_file
from core.access import SYSTEM
from core.cli.progress import ProgressBar
from core.store import Store

SIZES = {False: 100_000, True: 10_000}  # quick -> gems
GOAL = 1.5


def make_timed_file(plain: Path, path: Path, seed: int = 0, span_days: float = 365.0) -> Path:
    """``plain`` with a ``created_at`` per row: a year of history up to now, non-decreasing."""
    rng = random.Random(seed)
    lines = plain.read_text(encoding="utf-8").splitlines()
    start = datetime.now(timezone.utc) - timedelta(days=span_days)
    offsets = sorted(rng.uniform(0.0, span_days * 86400.0) for _ in lines)
    out = []
    for line, offset in zip(lines, offsets):
        row = json.loads(line)
        row["created_at"] = (start + timedelta(seconds=offset)).isoformat()
        out.append(json.dumps(row))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _import(url: str, path: Path, name: str, label: str, show: bool) -> float:
    bar = ProgressBar(label, stream=sys.stderr) if show else None
    progress = (lambda done, total: bar.update(done / total if total else 1.0)) if bar else None
    with Store.open(url) as store:
        t0 = time.perf_counter()
        report = store.import_path(name, path, SYSTEM, preset="memory", progress=progress)
        elapsed = time.perf_counter() - t0
    if bar:
        bar.close()
    assert report.imported > 0
    return elapsed


def bench(kind: str, workdir: Path, plain: Path, timed: Path, n: int, repeat: int = 2, show: bool = True) -> dict:
    """Best-of-``repeat`` seconds of each import, alternating plain and timed, each into a fresh
    empty database of ``kind`` (so neither pays for the other's rows); gems/s and the ratio."""
    best = {"plain": float("inf"), "timed": float("inf")}
    for k in range(repeat):
        for kind_of_file, path in (("plain", plain), ("timed", timed)):
            run_dir = workdir / f"{kind_of_file}-{k}"
            run_dir.mkdir()
            with database(kind, run_dir) as url:
                seconds = _import(url, path, "bench", f"{kind_of_file} import {k + 1}/{repeat}", show)
            best[kind_of_file] = min(best[kind_of_file], seconds)
    return {"gems": n, "plain_s": best["plain"], "timed_s": best["timed"], "plain_gems_per_s": n / best["plain"],
            "timed_gems_per_s": n / best["timed"], "ratio": best["timed"] / best["plain"], "goal": GOAL}


def run_all(quick: bool = False, n: int | None = None, databases: tuple[str, ...] = ("sqlite",), repeat: int = 2,
            show: bool = True) -> list[dict]:
    n = n or SIZES[quick]
    workdir = Path(tempfile.mkdtemp(prefix="bench-time-import-"))
    results = []
    try:
        plain = make_gems_file(workdir / "plain.jsonl", n)
        timed = make_timed_file(plain, workdir / "timed.jsonl")
        for kind in databases:
            try:
                kind_dir = workdir / kind
                kind_dir.mkdir()
                res = {"name": "time_import", "database": kind, **bench(kind, kind_dir, plain, timed, n, repeat, show)}
            except Unavailable as exc:
                print(f"time_import {kind}: skipped ({exc})")
                continue
            results.append(res)
            print(f"time_import {kind}: {n:,} gems, plain {res['plain_gems_per_s']:,.0f} gems/s, timestamped "
                  f"{res['timed_gems_per_s']:,.0f} gems/s: ratio {res['ratio']:.2f} (goal <= {GOAL})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k gems instead of 100k")
    ap.add_argument("--n", type=int, default=None, help="gems to import")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each import (best kept)")
    ap.add_argument("--db", action="append", choices=DATABASES, help="database(s) (default: sqlite)")
    ap.add_argument("--json", action="store_true", help="no progress bars (the JSON line is printed anyway)")
    a = ap.parse_args()
    run_all(a.quick, a.n, tuple(a.db or ("sqlite",)), a.repeat, show=not a.json)
