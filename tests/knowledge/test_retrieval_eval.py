"""Retrieval evaluation on real text (numpy/scipy/pandas docstrings), hashing-v1 embedder.

The floor is about half of the measured recall@5 (0.667 on 45 questions over 902 gems
with numpy 2.4 / scipy 1.17 / pandas 3.1): it catches a broken embedder or ranking,
not small drifts of the corpus between library versions.
"""
from __future__ import annotations

import math

import pytest

from benchmarks.retrieval_corpus import build_corpus
from benchmarks.retrieval_eval import evaluate, load_questions

RECALL5_FLOOR = 0.33
MRR_FLOOR = 0.29


@pytest.fixture(scope="module")
def corpus():
    return build_corpus()


def test_corpus_and_questions_are_consistent(corpus):
    ids = [g.id for g in corpus]
    assert len(ids) == len(set(ids)) and len(corpus) >= 300
    assert all(len(g.text) >= 15 for g in corpus)
    names = {n for g in corpus for n in g.names}
    questions = load_questions()
    assert len(questions) >= 30
    for q in questions:  # every question can be answered by some gem of the corpus
        assert q["question"].strip() and any(e in names for e in q["expected"]), q


def test_hashing_recall_at_5_above_floor(corpus):
    res = evaluate("hashing-v1", corpus)
    assert res["questions"] >= 30 and res["gems"] == len(corpus)
    assert math.isfinite(res["recall@5"]) and res["recall@5"] >= RECALL5_FLOOR, res["recall@5"]
    assert math.isfinite(res["mrr@10"]) and res["mrr@10"] >= MRR_FLOOR, res["mrr@10"]
    ranks = [pq["rank"] for pq in res["per_question"]]
    assert sum(r is not None and r <= 5 for r in ranks) / len(ranks) == pytest.approx(res["recall@5"])
