"""Command-line start-up benchmarks (issue 11, item 18): wall time of a fresh process.

Run with ``python -m core bench --suite startup`` or ``python -m benchmarks.startup``
(``--quick`` for fewer repeats, ``--json``, ``--only NAME``). Each figure is the median wall
time of a new interpreter, and the ratio against a bare ``python -c pass`` measured in the
same run (so the figures compare across machines):

* ``help``: ``python -m core --help`` (the parser and command modules only).
* ``reflect_100``: ``python -m core reflect QUESTION --providers offline`` on a 100-gem
  lattice in a temporary SQLite database (imported once, before timing).
* ``import_time``: the slowest top-level packages of that reflect, from ``python -X importtime``
  (cumulative ms), to see where start-up goes.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from benchmarks import run_suite, suite_main

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "how does coherence decay over time"
_WATCH = ("numpy", "scipy", "pandas", "sqlalchemy", "alembic", "openai", "anthropic", "tiktoken", "plotly",
          "prometheus_client", "cryptography", "jwt", "streamlit", "scipy.integrate", "scipy.special", "scipy.optimize")


def _wall(argv: list[str], env: dict[str, str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _baseline(env: dict[str, str], repeats: int) -> float:
    return _wall([sys.executable, "-c", "pass"], env, repeats)


class _Lattice:
    """A temporary SQLite database holding a 100-gem lattice (made once per run)."""

    _env: dict[str, str] | None = None
    _dir: tempfile.TemporaryDirectory | None = None

    @classmethod
    def env(cls) -> dict[str, str]:
        if cls._env is None:
            cls._dir = tempfile.TemporaryDirectory(prefix="lattice-startup-")
            tmp = Path(cls._dir.name)
            src = tmp / "gems.jsonl"
            topics = ["coherence", "phase", "energy", "decay", "memory", "interference", "entanglement"]
            src.write_text("".join(json.dumps({"title": f"gem {i}", "content": f"Gem {i} on {topics[i % 7]} and "
                                               f"{topics[(i * 3) % 7]}: how it changes over time."}) + "\n"
                                   for i in range(100)), encoding="utf-8")
            env = {**os.environ, "LATTICE_DATABASE_URL": f"sqlite:///{tmp / 'startup.db'}"}
            subprocess.run([sys.executable, "-m", "core", "import", str(src), "--lattice", "startup"], cwd=ROOT,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            cls._env = env
        return cls._env


def bench_help(quick: bool) -> dict:
    env, repeats = dict(os.environ), 3 if quick else 7
    base = _baseline(env, repeats)
    t = _wall([sys.executable, "-m", "core", "--help"], env, repeats)
    return {"name": "help", "seconds": t, "python_pass_s": base, "ratio": t / base}


def _reflect_argv() -> list[str]:
    return [sys.executable, "-m", "core", "reflect", QUESTION, "--lattice", "startup", "--providers", "offline"]


def bench_reflect_100(quick: bool) -> dict:
    env, repeats = _Lattice.env(), 2 if quick else 5
    base = _baseline(env, repeats)
    t = _wall(_reflect_argv(), env, repeats)
    return {"name": "reflect_100", "seconds": t, "python_pass_s": base, "ratio": t / base}


def bench_import_time(quick: bool) -> dict:
    out = subprocess.run([sys.executable, "-X", "importtime", *_reflect_argv()[1:]], cwd=ROOT, env=_Lattice.env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True).stderr
    cumulative: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)$", line)
        if m and m.group(3).split(".")[0] in _WATCH and m.group(3) in _WATCH:
            cumulative[m.group(3)] = max(cumulative.get(m.group(3), 0.0), int(m.group(1)) / 1000)
    top = dict(sorted(cumulative.items(), key=lambda kv: -kv[1]))
    return {"name": "import_time", **{f"{k}_ms": v for k, v in top.items()}}


BENCHMARKS: dict[str, Callable[[bool], dict]] = {
    "help": bench_help,
    "reflect_100": bench_reflect_100,
    "import_time": bench_import_time,
}


def run_all(quick: bool = False, only: list[str] | None = None,
            log: Callable[[str], None] | None = print) -> list[dict]:
    return run_suite(BENCHMARKS, quick, only, log)


if __name__ == "__main__":
    raise SystemExit(suite_main(BENCHMARKS, "python -m benchmarks.startup", __doc__.splitlines()[0]))
