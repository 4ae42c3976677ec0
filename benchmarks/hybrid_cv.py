"""Choosing the hybrid retriever's weights without fitting them to the questions they are scored on.

5-fold cross-validation over the shipped MemoryBank questions (``data/memorybank-en``, folds
by a seeded shuffle): for each fold, the (W_LEXICAL, W_DATE) pair of the grid with the best
recall@10 on the other four folds is scored on the held-out fold; the held-out recall@10 over
all questions is the figure to quote (not the in-sample best). Ranked by the fused score alone
(the ``hybrid`` ranker: no decay), each question among its own user's gems.

Run: ``python -m benchmarks.hybrid_cv [--embedder hashing-v2] [--folds 5] [--seed 0] [--json]``.
It imports the data into a temporary SQLite store (nothing else is touched).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "memorybank-en"
W_LEXICAL_GRID = tuple(round(x, 2) for x in np.arange(0.0, 1.001, 0.05))
W_DATE_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def per_question_recall(fused: np.ndarray, candidates: np.ndarray, evidence: list[np.ndarray], k: int = 10
                        ) -> np.ndarray:
    """Recall@k of each question (NaN without evidence): ties in lattice order, as evaluate()."""
    out = np.full(len(evidence), np.nan)
    for i, ev in enumerate(evidence):
        if ev.size:
            s = np.where(candidates[i], fused[i], -np.inf)
            top = np.argsort(-s, kind="stable")[:k]
            out[i] = np.isin(ev, top).mean()
    return out


def terms(embedder: str):
    """(similarity, bm25, dates, candidates, evidence) of the shipped set under ``embedder``."""
    from core.access import SYSTEM
    from core.evaluation import corpus_from_store, load_questions
    from core.evaluation.rankers import created_at
    from core.knowledge import HybridIndex
    from core.store import Store
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LATTICE_DATABASE_URL"] = f"sqlite:///{tmp}/cv.db"
        with Store.open() as store:
            store.import_path("mb", DATA / "gems.jsonl", SYSTEM, preset="memory", embedder=embedder)
            corpus = corpus_from_store(store, "mb")
    questions = load_questions(DATA / "questions.jsonl")
    texts = [q.question for q in questions]
    sim = np.maximum(corpus.embed(texts) @ corpus.embeddings.T, 0.0)
    lexical, dates = HybridIndex(corpus.texts, created_at(corpus)).terms(texts)
    asked = [corpus.lattice_time(q.asked_at) for q in questions]
    cand = np.stack([corpus.candidates(t, q.scope) for t, q in zip(asked, questions)])
    evidence = [np.array([corpus.position[e] for e in q.evidence], dtype=np.int64) for q in questions]
    return sim, lexical, dates, cand, evidence


def cross_validate(embedder: str = "hashing-v2", folds: int = 5, seed: int = 0) -> dict:
    from core.knowledge import fuse
    sim, lexical, dates, cand, evidence = terms(embedder)
    grid = [(wl, wd) for wl in W_LEXICAL_GRID for wd in W_DATE_GRID]
    table = np.stack([per_question_recall(fuse(sim, lexical, dates, wl, wd), cand, evidence) for wl, wd in grid])
    fold_of = np.random.default_rng(seed).permutation(len(evidence)) % folds
    held_out = np.full(len(evidence), np.nan)
    chosen = []
    for f in range(folds):
        train = fold_of != f
        best = int(np.argmax(np.nanmean(table[:, train], axis=1)))  # first best: the lower weights
        chosen.append({"fold": f, "w_lexical": grid[best][0], "w_date": grid[best][1],
                       "train_recall@10": float(np.nanmean(table[best, train]))})
        held_out[~train] = table[best, ~train]
    at = {g: float(np.nanmean(table[i])) for i, g in enumerate(grid)}
    return {"embedder": embedder, "folds": folds, "seed": seed, "held_out_recall@10": float(np.nanmean(held_out)),
            "chosen": chosen, "in_sample_best": max(at.values()),
            "at_defaults": None, "without_dates": max(v for (wl, wd), v in at.items() if wd == 0.0),
            "grid": {f"{wl},{wd}": v for (wl, wd), v in at.items()}}


def main(argv: list[str] | None = None) -> int:
    from core.knowledge.hybrid import W_DATE, W_LEXICAL
    ap = argparse.ArgumentParser(prog="python -m benchmarks.hybrid_cv", description=__doc__.splitlines()[0])
    ap.add_argument("--embedder", default="hashing-v2")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = cross_validate(args.embedder, args.folds, args.seed)
    res["at_defaults"] = res["grid"].get(f"{W_LEXICAL},{W_DATE}")
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{res['embedder']}: {res['folds']}-fold held-out recall@10 {res['held_out_recall@10']:.3f} "
          f"(in-sample best {res['in_sample_best']:.3f}; shipped weights W_LEXICAL={W_LEXICAL}, W_DATE={W_DATE}: "
          f"{res['at_defaults']:.3f}; best without the date term {res['without_dates']:.3f})")
    for c in res["chosen"]:
        print(f"  fold {c['fold']}: w_lexical={c['w_lexical']} w_date={c['w_date']} "
              f"train recall@10 {c['train_recall@10']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
