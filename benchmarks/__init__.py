"""Benchmarks: ratios and figures measured in one run (``python -m core bench --suite ...``)."""
from __future__ import annotations

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
