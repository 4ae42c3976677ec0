"""Smoke test of benchmarks/time_import.py at a tiny size on SQLite: it runs and reports positive
figures (no timing target is asserted; ``python -m benchmarks.time_import`` measures them)."""
from __future__ import annotations

import json

from benchmarks import time_import


def test_time_import_bench_runs_tiny(capsys):
    results = time_import.run_all(n=200, repeat=1, show=False)
    assert [(r["name"], r["database"], r["gems"]) for r in results] == [("time_import", "sqlite", 200)]
    assert results[0]["plain_gems_per_s"] > 0 and results[0]["timed_gems_per_s"] > 0 and results[0]["ratio"] > 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == results
