"""Retrieval evaluation: do user questions find the right gem in a corpus of real text?

Corpus: first docstring paragraphs of ~900 public numpy/scipy/pandas functions
(:mod:`benchmarks.retrieval_corpus`, id = qualified name). Questions: the hand-written
``benchmarks/retrieval_questions.json`` (question + every acceptable gem id). Each
shipped embedder that can run here embeds corpus and questions; gems are ranked with
:func:`core.knowledge.resonance.resonance` on a lattice with coherence 1 everywhere (so resonance =
similarity), beta = 0 and min_score = 0. Reported: recall@5 (an acceptable gem in the
top 5) and MRR over the top 10 (1/rank of the first acceptable gem, 0 if none). Each
retriever (``--retriever``): ``similarity`` (the embedder alone), ``bm25`` (the hybrid's BM25
alone, :class:`core.knowledge.LexicalIndex`) and ``hybrid``
(:func:`core.knowledge.hybrid_resonance`: BM25 fused with the similarity; these docstrings
name no dates, so the date term is 0).

Run: ``python -m benchmarks.retrieval_eval [--embedder NAME ...] [--retriever NAME ...] [--json]``. The
``all-minilm-l6-v2`` embedder runs only where its optional package is installed;
``openai:*`` needs OPENAI_API_KEY and network access and is skipped without them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from core.knowledge import get_embedder
from core.knowledge import (EmbeddingError, HybridIndex, embed_queries, hybrid_resonance, rank_similarities,
                            resonance)
from core.engine import Lattice
from core.engine import LatticeParams

from .retrieval_corpus import DocGem, build_corpus

QUESTIONS_PATH = Path(__file__).with_name("retrieval_questions.json")
EMBEDDERS = ("hashing-v1", "hashing-v2", "all-minilm-l6-v2", "openai:text-embedding-3-small")
RETRIEVERS = ("similarity", "bm25", "hybrid")
TOP_K = 10


def load_questions(path: Path = QUESTIONS_PATH) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["questions"]


def evaluate(embedder_name: str, gems: list[DocGem] | None = None, questions: list[dict] | None = None,
             k_recall: int = 5, retriever: str = "similarity") -> dict:
    """Embed corpus and questions with one embedder, rank with ``resonance`` (or the hybrid, or
    BM25 alone: ``retriever``), score the ranks."""
    gems = gems if gems is not None else build_corpus()
    questions = questions if questions is not None else load_questions()
    embedder = get_embedder(embedder_name)
    t0 = time.perf_counter()
    emb = embed_queries(embedder, [g.text for g in gems])
    qvec = embed_queries(embedder, [q["question"] for q in questions])
    t_embed = time.perf_counter() - t0
    n = len(gems)
    lattice = Lattice(np.ones(n), np.zeros(n), np.ones(n), np.zeros(n), ids=[g.id for g in gems],
                      params=LatticeParams(k=TOP_K, min_score=0.0, alpha=1.0, beta=0.0))
    names = [set(g.names) for g in gems]
    index = HybridIndex([g.text for g in gems]) if retriever != "similarity" else None
    per_question, hits, rr = [], 0, 0.0
    t0 = time.perf_counter()
    for q, v in zip(questions, qvec):
        if retriever == "hybrid":
            ranking = hybrid_resonance(v, q["question"], emb, lattice, index)
        elif retriever == "bm25":
            ranking = rank_similarities(index.lexical.scores([q["question"]])[0], lattice)
        else:
            ranking = resonance(v, emb, lattice)
        expected = set(q["expected"])
        rank = next((g.rank for g in ranking.gems if names[g.index] & expected), None)
        hits += rank is not None and rank <= k_recall
        rr += 1.0 / rank if rank else 0.0
        per_question.append({"question": q["question"], "rank": rank, "top": [g.gem_id for g in ranking.gems[:3]]})
    t_rank = time.perf_counter() - t0
    m = len(questions)
    return {"embedder": embedder.name, "retriever": retriever, "gems": n, "questions": m, f"recall@{k_recall}": hits / m,
            f"mrr@{TOP_K}": rr / m, "embed_s": t_embed, "rank_s": t_rank, "per_question": per_question}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.retrieval_eval", description=__doc__.splitlines()[0])
    ap.add_argument("--embedder", action="append", help=f"embedder(s) to evaluate (default: {', '.join(EMBEDDERS)})")
    ap.add_argument("--retriever", action="append", choices=RETRIEVERS,
                    help=f"retriever(s) per embedder (default: all of {', '.join(RETRIEVERS)})")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--verbose", action="store_true", help="print the rank of every question")
    args = ap.parse_args(argv)
    gems, questions = build_corpus(), load_questions()
    results = []
    for name in args.embedder or EMBEDDERS:
        if name.startswith("openai:") and not os.environ.get("OPENAI_API_KEY"):
            print(f"{name:34s} skipped: needs OPENAI_API_KEY and network access", file=sys.stderr)
            continue
        for retriever in args.retriever or RETRIEVERS:
            if retriever == "bm25" and results and any(r["retriever"] == "bm25" for r in results):
                continue  # BM25 does not depend on the embedder
            try:
                res = evaluate(name, gems, questions, retriever=retriever)
            except EmbeddingError as exc:
                print(f"{name:34s} skipped: {exc}", file=sys.stderr)
                break
            results.append(res)
            _print(res, args)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _print(res: dict, args: argparse.Namespace) -> None:
    if not args.json:
        label = "bm25" if res["retriever"] == "bm25" else f"{res['embedder']} {res['retriever']}"
        print(f"{label:34s} gems={res['gems']} questions={res['questions']} "
                  f"recall@5={res['recall@5']:.3f} mrr@10={res['mrr@10']:.3f} "
              f"embed={res['embed_s']:.2f}s rank={res['rank_s'] * 1000:.1f}ms")
        if args.verbose:
            for pq in res["per_question"]:
                print(f"   {str(pq['rank'] or '-'):>3s}  {pq['question']}  -> {', '.join(pq['top'])}")


if __name__ == "__main__":
    raise SystemExit(main())
