"""Evaluation bench at scale (issue 14): many questions x many gems x many parameter points.

``python -m benchmarks.evaluation [--quick] [--json]``. One row, ``eval_points_vs_single_query``:
evaluating Q questions over N gems at P parameter points with :func:`core.evaluation.evaluate`
(the similarity matrix computed once, block by block, and re-scored per point) against
ranking each question at each point with the single-query path
(:func:`core.knowledge.resonance` on the lattice evolved to the question's time). The single-
query path is timed on a sample of (question, point) pairs in the same run and extrapolated to
Q x P: running all 50,000 would take many minutes. Goal: >= 20x at Q = 1000, N = 1e5, P = 50.
"""
from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np

from benchmarks.store import _VOCAB


def _texts(n: int, words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(_VOCAB, k=words)) for _ in range(n)]


def build(n: int, q: int, seed: int = 5):
    from core.engine import Lattice, preset_params
    from core.evaluation import EvalCorpus, question_set
    from core.knowledge import embed_in_batches, get_embedder
    rng = np.random.default_rng(seed)
    emb = get_embedder("hashing-v1-256")
    texts = _texts(n, 24, seed)
    params = preset_params("memory")
    t_now = 24.0 * 90
    created = np.sort(rng.uniform(0, t_now, n))
    lat = Lattice(rng.uniform(0.5, 3.0, n), params=params, ids=[f"g{i}" for i in range(n)], t=t_now)
    lat.set_states(np.arange(n), coherence=np.exp(-params.lambda_ * (t_now - created) / lat.energy))
    corpus = EvalCorpus(ids=list(lat.ids), texts=texts, tags=[[] for _ in range(n)],
                        embeddings=embed_in_batches(emb, texts), lattice=lat, created_t=created,
                        last_observed_t=np.full(n, np.nan), observations=np.zeros(n), embedder=emb)
    # each question paraphrases one gem: half of its words, so the evidence is findable but not trivially
    picks = rng.choice(n, q, replace=False)
    rows = [{"question": " ".join(texts[i].split()[::2]), "asked_at": t_now + 4.0 * float(rng.integers(0, 10)),  # ten sessions
             "evidence": [f"g{i}"]} for i in picks]
    return corpus, question_set(rows)


def run(n: int, q: int, points: int, sample: int) -> dict:
    from core.evaluation import evaluate
    from core.knowledge import HybridIndex, rank_question
    corpus, questions = build(n, q)
    half_lives = np.geomspace(24.0, 24.0 * 365, points)
    grid = [(f"t½={h:.0f}h", "lattice", corpus.params.replace(lambda_=float(np.log(2) / h), k=10))
            for h in half_lives]
    t0 = time.perf_counter()
    results = evaluate(corpus, questions, grid, ks=(10,), explain=False)
    ours = time.perf_counter() - t0
    # the single-query path as search and reflections rank (the memory preset's retriever, hybrid:
    # its index built once, as the lattice cache keeps it): evolve a copy to the question's time,
    # rank, find the evidence
    q_emb = corpus.embed([x.question for x in questions])
    index = HybridIndex(corpus.texts)
    rng = np.random.default_rng(1)
    pairs = [(int(rng.integers(q)), int(rng.integers(points))) for _ in range(sample)]
    found = 0
    t0 = time.perf_counter()
    for i, p in pairs:
        lat = corpus.lattice.copy()
        lat.params = grid[p][2]
        lat.evolve(corpus.lattice_time(questions.questions[i].asked_at) - lat.t)
        question = questions.questions[i].question
        ranking = rank_question(q_emb[i], question, corpus.embeddings, lat, grid[p][2], index)
        found += questions.questions[i].evidence[0] in [g.gem_id for g in ranking]
    per_pair = (time.perf_counter() - t0) / sample
    single = per_pair * q * points
    recall = [r.report.overall["recall@10"].value for r in results]
    return {"name": "eval_points_vs_single_query", "retriever": corpus.params.retriever, "questions": q, "gems": n,
            "points": points,
            "evaluate_s": ours, "single_query_s_per_pair": per_pair, "single_query_extrapolated_s": single,
            "ratio": single / ours, "recall@10_range": [min(recall), max(recall)],
            "sample_recall@10": found / sample, "target": ">= 20x"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.evaluation", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 questions x 2e4 gems x 10 points")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = run(20_000, 200, 10, 40) if args.quick else run(100_000, 1000, 50, 60)
    if args.json:
        print(json.dumps(out))
    else:
        print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
