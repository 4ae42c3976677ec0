"""The hybrid retriever in the live paths (issue 14, item 4): what a question costs with the
hybrid against the similarity retriever, measured in one run on the same lattice.

Run with ``python -m benchmarks.hybrid_live`` (``--quick`` for 10k gems instead of 100k,
``--json``, ``--only NAME``).

* ``demo_search``: :func:`core.service.search` on the shipped demo through a Workbench's
  lattice cache (warm: the hybrid index built once, before timing), median over the demo
  questions, retriever ``hybrid`` against ``similarity`` on the same lattice and parameters.
* ``demo_reflection_rank``: the reflection engine's ranking (:meth:`ReflectionEngine.rank`,
  the resonance cache emptied before each question, so every ranking is computed), same pairing.
* ``rank_100k``: the engine's ranking over 100k gems of real text (numpy/scipy/pandas docstring
  paragraphs, hashing-v2, memory preset), hybrid against similarity, median over questions with
  and without a date; also the index build (once per lattice content) and its size.

Why the hybrid stays cheap per question: BM25 reads only the index rows of the question's terms
(the gems sharing one), the date term only the gems of the days it names; what is O(N) is the
same dense work the similarity does (one score per gem, the rule, the top k).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks import run_suite, suite_main

QUESTIONS = ["How do coupled oscillators synchronise?", "What is the forgetting curve?",
             "How does retrieval-augmented generation use a vector index?", "What is wave interference?",
             "How long until a quantity with a half-life of 5 years halves twice?",
             "How does a database index speed up a query?", "What is a sidereal day?",
             "What did we talk about on May 2nd?", "BM25 term frequency saturation", "Kuramoto order parameter"]


def _median_ms(fn: Callable[[str], object], questions: list[str], rounds: int = 3) -> float:
    """Median wall time of ``fn(question)`` in milliseconds, best of ``rounds`` per question."""
    per_q = []
    for q in questions:
        best = np.inf
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn(q)
            best = min(best, time.perf_counter() - t0)
        per_q.append(best * 1e3)
    return float(statistics.median(per_q))


def _demo_store(tmp: str):
    from core.service import ensure_demo
    from core.store import Store

    store = Store.open(f"sqlite:///{Path(tmp) / 'demo.db'}")
    ensure_demo(store)
    return store


def _with_retriever(store, retriever: str) -> None:
    from core.access import SYSTEM
    store.update_params("demo", store.info("demo").params.replace(retriever=retriever), SYSTEM)


def bench_demo_search(quick: bool) -> dict:
    from core.service import Workbench, search

    with tempfile.TemporaryDirectory() as tmp:
        store = _demo_store(tmp)
        wb = Workbench(store)
        out = {}
        for retriever in ("similarity", "hybrid"):
            _with_retriever(store, retriever)
            run = lambda q: search(store, "demo", q, lattices=wb.lattices, embedder=wb.embedder)  # noqa: E731
            run(QUESTIONS[0])  # warm: the lattice read, the hybrid index
            out[retriever] = _median_ms(run, QUESTIONS)
        store.close()
    return {"name": "demo_search", "gems": _demo_gems(), "similarity_ms": out["similarity"],
            "hybrid_ms": out["hybrid"], "ratio": out["hybrid"] / out["similarity"]}


def _demo_gems() -> int:
    from core.service import load_demo_records
    return len(load_demo_records()[0])


def bench_demo_reflection_rank(quick: bool) -> dict:
    from core.access import SYSTEM
    from core.service import Workbench

    with tempfile.TemporaryDirectory() as tmp:
        store = _demo_store(tmp)
        wb = Workbench(store)
        out = {}
        for retriever in ("similarity", "hybrid"):
            _with_retriever(store, retriever)
            engine, _ = wb.engine("demo", SYSTEM)

            def rank(q: str) -> None:
                wb.cache.clear()  # every ranking computed, none served from the resonance cache
                engine.rank(q)

            rank(QUESTIONS[0])
            out[retriever] = _median_ms(rank, QUESTIONS)
        store.close()
    return {"name": "demo_reflection_rank", "similarity_ms": out["similarity"], "hybrid_ms": out["hybrid"],
            "ratio": out["hybrid"] / out["similarity"]}


def bench_rank_100k(quick: bool) -> dict:
    from benchmarks.knowledge import docstring_paragraphs
    from core.engine import Lattice, preset_params
    from core.knowledge import HybridIndex, ResonanceCache, get_embedder
    from core.reflection import ReflectionEngine, ReflectionServices

    n = 10_000 if quick else 100_000
    paras = docstring_paragraphs(5000)
    rng = np.random.default_rng(0)
    # distinct gems of real text: a paragraph plus a few words of its own
    texts = [f"{paras[i % len(paras)]} note {i} about {paras[(7 * i) % len(paras)].split()[0]}" for i in range(n)]
    emb = get_embedder("hashing-v2")
    vectors = emb.embed(texts)
    start = datetime(2023, 4, 1, tzinfo=timezone.utc)
    created = [start + timedelta(minutes=int(m)) for m in np.sort(rng.integers(0, 60 * 24 * 60, n))]
    t0 = time.perf_counter()
    index = HybridIndex(texts, created)
    build_s = time.perf_counter() - t0
    params = preset_params("memory")
    lattice = Lattice(rng.uniform(0.3, 5.0, n), rng.uniform(0, 6.28, n), rng.uniform(0.05, 1.0, n),
                      np.full(n, 0.1), params=params, ids=[f"g{i}" for i in range(n)])
    out = {}
    for retriever in ("similarity", "hybrid"):
        p = params.replace(retriever=retriever)
        engine = ReflectionEngine(lattice, texts, vectors, emb, ReflectionServices(cache=ResonanceCache()), params=p,
                                  hybrid=index)

        def rank(q: str) -> None:
            engine.cache.clear()
            engine.rank(q)

        rank(QUESTIONS[0])
        out[retriever] = _median_ms(rank, QUESTIONS)
    return {"name": "rank_100k", "gems": n, "similarity_ms": out["similarity"], "hybrid_ms": out["hybrid"],
            "ratio": out["hybrid"] / out["similarity"], "index_build_s": build_s, "index_mb": index.nbytes / 2**20}


BENCHMARKS: dict[str, Callable[[bool], dict]] = {
    "demo_search": bench_demo_search,
    "demo_reflection_rank": bench_demo_reflection_rank,
    "rank_100k": bench_rank_100k,
}


def run_all(quick: bool = False, only: list[str] | None = None, log: Callable[[str], None] | None = print) -> list[dict]:
    return run_suite(BENCHMARKS, quick, only, log)


if __name__ == "__main__":
    raise SystemExit(suite_main(BENCHMARKS, "python -m benchmarks.hybrid_live", __doc__.splitlines()[0]))
