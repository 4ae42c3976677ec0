"""Scale suite (issue 12): the app's own paths against their floors, at 1e5 to 1e6 gems, in one run.

Run with ``python -m core bench --suite scale`` (``--quick``: 1e4-2e5 gems, a minute or two;
``--json``: an object mapping each row's key to its measured ratio). Rows:

* ``reflection_workbench_vs_engine``: p95 of a reflection through :class:`core.service.Workbench`
  (SQLite store of 1e5 gems, warm lattice cache, offline answerer; every answer writes
  its re-coherence, so each question follows a changed version) over the p95 of the same
  questions on the in-memory :class:`core.reflection.ReflectionEngine`. ``..._pg``: the same on
  PostgreSQL. ``reflection_cold_vs_load``: a new Workbench's first question over
  ``Store.load`` + embeddings fetch. ``reflection_1e6_warm_p95_s`` (full run only): seconds,
  1e6 gems of 256 dimensions (goal < 0.5 s).
* ``batch_resonance_vs_floor``: 100 queries x 1e6 gems of 1024 dimensions against a float32
  in-place gemm + 2-D argpartition (``batch_resonance_peak_vs_floor``: peak memory ratio).
* ``coupled_peak_vs_state``: peak traced memory of a coupled step at 1e6 gems / 2e6 edges
  over the 32 MB of state arrays.
* ``evolve_new_dt_vs_exp``: a first evolve with a new dt over ``np.exp`` of N values, 1e6.
* ``pg_load_vs_copy``: ``Store.load`` of 1e6 states on PostgreSQL over a binary COPY of
  the same columns.
"""
from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.store import _VOCAB, Unavailable, database, make_gems_file

QUESTIONS = 60  # per measurement; p95 over them


def _questions(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(_VOCAB, k=6)).capitalize() + "?" for _ in range(n)]


def _p95(samples: list[float]) -> float:
    return float(np.percentile(np.asarray(samples), 95))


def _build(url: str, n: int, embedder: str, workdir: Path, log: Callable[[str], None] | None) -> None:
    from core.access import SYSTEM
    from core.store import Store

    path = make_gems_file(workdir / f"gems-{n}.jsonl", n)
    t0 = time.perf_counter()
    with Store.open(url) as store:
        store.create_lattice("scale", SYSTEM, embedder=embedder)
        store.import_path("scale", path, SYSTEM)
    if log:
        log(f"  (built {n} gems on {url.split(':')[0]} in {time.perf_counter() - t0:.0f} s)")


def reflection_workbench_vs_engine(kind: str, n: int, embedder: str = "hashing-v1",
                                   questions: int = QUESTIONS, log: Callable[[str], None] | None = None) -> dict:
    """Workbench (warm and cold) vs the in-memory engine on a store of ``n`` gems of ``kind``."""
    from core.access import SYSTEM
    from core.knowledge.registry import get_embedder
    from core.reflection import MemorySink, ReflectionEngine, ReflectionServices, UserRateLimiter
    from core.router import build_router
    from core.service import Workbench
    from core.store import Store

    asked = _questions(questions + 2)
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        _build(url, n, embedder, Path(tmp), log)
        with Store.open(url) as store:
            # floor of a cold question: what the old path read per question
            t0 = time.perf_counter()
            loaded = store.load("scale")
            emb = loaded.embeddings()
            t_load = time.perf_counter() - t0
            texts = loaded.texts()["content"].tolist()
            engine = ReflectionEngine(
                loaded.lattice, texts, emb, get_embedder(loaded.info.embedder),
                ReflectionServices(router=build_router("offline"), sink=MemorySink(),
                                   rate_limiter=UserRateLimiter(capacity=10**6, period=1.0)),
                lattice_name="scale")
            engine.reflect(asked[0], SYSTEM).result()
            wb = Workbench(store, router=build_router("offline"),
                           rate_limiter=UserRateLimiter(capacity=10**6, period=1.0))
            t0 = time.perf_counter()
            wb.reflect("scale", asked[1], SYSTEM).result()
            t_cold = time.perf_counter() - t0
            # alternate the two, question by question: both see the same machine load
            in_memory, warm = [], []
            for q in asked[2:questions + 2]:
                t0 = time.perf_counter()
                engine.reflect(q, SYSTEM).result()
                t1 = time.perf_counter()
                wb.reflect("scale", q, SYSTEM).result()
                in_memory.append(t1 - t0)
                warm.append(time.perf_counter() - t1)
            cache = wb.lattices.stats()
    return {"name": f"reflection_workbench_{kind}", "n": n, "embedder": embedder,
            "engine_p95_s": _p95(in_memory), "workbench_p95_s": _p95(warm),
            "workbench_p50_s": float(np.median(warm)), "ratio": _p95(warm) / _p95(in_memory),
            "cold_s": t_cold, "load_plus_embeddings_s": t_load, "cold_ratio": t_cold / t_load,
            "cache_mb": cache["bytes"] / 2**20, "refreshes_applied": cache["applied"],
            "target": "warm p95 <= 2x engine; cold <= 2x load + embeddings"}


def _try(fn: Callable[[], dict], name: str) -> dict:
    try:
        return fn()
    except Unavailable as exc:
        return {"name": name, "skipped": str(exc)}


def run_all(quick: bool = False, only: list[str] | None = None, log: Callable[[str], None] | None = print) -> dict:
    """Run the rows; log a line each; return ``{key: ratio}`` (what ``--json`` prints)."""
    from benchmarks import engine, knowledge, store

    n = 10_000 if quick else 100_000
    big = 200_000 if quick else 1_000_000
    rows: dict[str, Callable[[], dict]] = {
        "reflection_workbench_vs_engine": lambda: reflection_workbench_vs_engine("sqlite", n, log=log),
        "reflection_workbench_vs_engine_pg": lambda: _try(
            lambda: reflection_workbench_vs_engine("postgresql", n, log=log), "reflection_workbench_postgresql"),
        "batch_resonance_vs_floor": lambda: knowledge.batch_resonance_vs_floor(big, 100, 256 if quick else 1024),
        "coupled_peak_vs_state": lambda: engine.coupled_peak_vs_state(big, 2 * big),
        "evolve_new_dt_vs_exp": lambda: engine.evolve_new_dt_vs_exp(big),
        "pg_load_vs_copy": lambda: _try(lambda: store.pg_load_vs_copy(big), "pg_load_vs_copy"),
    }
    if not quick:
        rows["reflection_1e6"] = lambda: reflection_workbench_vs_engine(
            "sqlite", 1_000_000, embedder="hashing-v1-256", questions=20, log=log)
    ratios: dict[str, float] = {}
    for key, fn in rows.items():
        if only and key not in only:
            continue
        res = fn()
        if log:
            figures = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in res.items() if k != "name")
            log(f"{key:34s} {figures}")
        if "skipped" in res:
            continue
        if key == "reflection_1e6":
            ratios["reflection_1e6_warm_p95_s"] = res["workbench_p95_s"]
            continue
        ratios[key] = float(res["ratio"])
        if key == "reflection_workbench_vs_engine":
            ratios["reflection_cold_vs_load"] = float(res["cold_ratio"])
        if key == "batch_resonance_vs_floor":
            ratios["batch_resonance_peak_vs_floor"] = float(res["peak_ratio"])
    return ratios


if __name__ == "__main__":
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", action="append")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = run_all(args.quick, args.only, None if args.json else print)
    print(json.dumps(out, indent=2) if args.json else "")
