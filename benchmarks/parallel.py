"""Sweeps beyond one process (issue 14, item 7): one 48-point sweep, three executors, as ratios.

``python -m benchmarks.parallel [--quick] [--json]``. One row, ``sweep_executors``: a
half-life x coherence-floor sweep of 48 points (12 x 4) over a planted timeline of 1e5 gems
(``--quick``: 2e4) run by :func:`core.evaluation.grid.sweep_outcomes` in-process, on a local
process pool of ``os.cpu_count()`` workers and on a Dask ``LocalCluster`` of 2 worker
processes. Ratios are in-process time over executor time (> 1: faster): ``*_ratio`` includes
the pool's or cluster client's start-up and the payload's transfer (the corpus once per
worker); ``*_warm_ratio`` is the same points again on a started runner (what the optimiser's
later batches cost).
Each worker recomputes the similarity matrix once per chunk, so on P cores expect less than
P x. The three tables are checked identical (bit for bit) in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import time


def run(gems: int, questions: int) -> dict:
    import numpy as np
    import pandas as pd
    from dask.distributed import LocalCluster

    from core.evaluation.parallel import PointRunner

    from core.evaluation.grid import parse_axis, sweep_outcomes
    from core.evaluation.synthetic import planted_timeline
    candidates = 6
    pt = planted_timeline(questions=questions, candidates=candidates, distractors=gems - questions * candidates,
                          dim=256, half_life=72.0, seed=3)
    axes = [parse_axis("half_life=2h:2000h:12:log"), parse_axis("coherence_floor=0:0.3:4")]

    def sweep(**kw):
        t0 = time.perf_counter()
        table = sweep_outcomes(pt.corpus, pt.questions, axes, ks=(1, 5), query_embeddings=pt.query_embeddings, **kw)
        return table, time.perf_counter() - t0

    def warm(**kw):
        """The same 48 points a second time on a started runner (the optimiser's later batches)."""
        points = [(f"point {i}", "lattice", p) for i, p in enumerate(
            pt.corpus.params.replace(lambda_=float(np.log(2) / h), coherence_floor=f)
            for h in axes[0].values for f in axes[1].values)]
        with PointRunner(pt.corpus, pt.questions, ks=(1, 5), query_embeddings=pt.query_embeddings, **kw) as runner:
            runner.run(points[:2])
            t0 = time.perf_counter()
            runner.run(points)
            return time.perf_counter() - t0

    inline, t_inline = sweep(executor="inline")
    pool, t_pool = sweep(executor="process")
    w_pool = warm(executor="process")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        dask, t_dask = sweep(executor="dask", scheduler=cluster.scheduler_address)
        w_dask = warm(executor="dask", scheduler=cluster.scheduler_address)
    for other in (pool, dask):
        pd.testing.assert_frame_equal(inline, other, check_exact=True)
    return {"name": "sweep_executors", "gems": len(pt.corpus), "questions": questions, "points": len(inline),
            "cpus": os.cpu_count(), "inline_s": t_inline, "process_s": t_pool, "dask_local2_s": t_dask,
            "process_ratio": t_inline / t_pool, "dask_local2_ratio": t_inline / t_dask,
            "process_warm_ratio": t_inline / w_pool, "dask_local2_warm_ratio": t_inline / w_dask, "identical": True,
            "target": "> 1x warm, < cpus x (each chunk recomputes the similarity matrix)"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.parallel", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2e4 gems x 100 questions (default: 1e5 x 400)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = run(20_000, 100) if args.quick else run(100_000, 400)
    if args.json:
        print(json.dumps(out))
    else:
        print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
