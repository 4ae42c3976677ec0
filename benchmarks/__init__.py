"""Benchmarks: ratios and figures measured in one run (``python -m core bench --suite ...``)."""
from __future__ import annotations

import argparse
import json
from typing import Callable, Mapping


def run_suite(benchmarks: Mapping[str, Callable[[bool], dict]], quick: bool = False, only: list[str] | None = None,
              log: Callable[[str], None] | None = print) -> list[dict]:
    """Run the named benchmark functions (``fn(quick) -> dict``) and log a line each."""
    results = []
    width = max((len(n) for n in benchmarks), default=0) + 2
    for name, fn in benchmarks.items():
        if only and name not in only:
            continue
        res = fn(quick)
        results.append(res)
        if log:
            figures = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in res.items() if k != "name")
            log(f"{name:{width}s} {figures}")
    return results


def suite_main(benchmarks: Mapping[str, Callable[[bool], dict]], prog: str, description: str,
               argv: list[str] | None = None) -> int:
    """``python -m benchmarks.<suite> [--quick] [--only NAME] [--json]``."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--only", action="append", choices=list(benchmarks), help="run only the named benchmark(s)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    results = run_suite(benchmarks, args.quick, args.only, None if args.json else print)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0
