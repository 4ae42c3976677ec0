"""Evaluate rankers and parameter sets on a question set: ranks of the evidence, metrics, reasons.

Each question is ranked as of its own ``asked_at``: only gems created by then (and in its
scope) are candidates, and coherence is decayed to that time (``EvalCorpus``); nothing is
written. The question embeddings and, block by block, the (B, N) similarity matrix are
computed once and shared by every ranker and every parameter point, so a sweep over P points
costs one matrix product and P cheap re-scorings, not P x Q single-query rankings.

The lattice's own ranker reads the score of its retriever (``params.retriever``): the cosine
similarity, or the hybrid's fused score (computed once per block, shared by every hybrid
point). Under floor and weighted the gem the rule always keeps is the best by *that* score
among the candidates, as the live ranking keeps it (core.knowledge.hybrid.rank_question): the
bench's ranks are the ranks search() and a reflection give the same question at the same time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from core.engine import LatticeParams
from core.errors import ValidationError
from core.evaluation.corpus import EvalCorpus
from core.evaluation.metrics import DEFAULT_KS, MetricReport, summarise
from core.evaluation.questions import QuestionSet
from core.evaluation.rankers import Block, HybridScores, Ranker, lattice_ranker, make_ranker

BLOCK_BYTES = 256 << 20  # one block's float32 (B, N) matrices: similarity, scores, masks


@dataclass
class PointResult:
    """One ranker under one parameter set: the evidence ranks per question and the metrics."""

    label: str
    ranker: str
    params: LatticeParams
    ranks: list[np.ndarray]
    report: MetricReport
    missed: list[dict] = field(default_factory=list)  # per question: evidence not in the top k, and why


def checked_evidence(corpus: EvalCorpus, questions: QuestionSet) -> tuple[list[np.ndarray], np.ndarray]:
    """Each question's evidence as corpus positions and its ask time in lattice units, after the
    checks every evaluation makes first: every evidence gem is in the lattice, and no question is
    asked before an observation the closed form would have to undo (ValidationError otherwise)."""
    evidence = _evidence(corpus, questions)
    asked = np.array([corpus.lattice_time(q.asked_at) for q in questions], dtype=np.float64)
    for q, t in zip(questions, asked):
        corpus.check_time(float(t), f"question {q.id!r}")
    return evidence, asked


def _evidence(corpus: EvalCorpus, questions: QuestionSet) -> list[np.ndarray]:
    out = []
    for q in questions:
        missing = [e for e in q.evidence if e not in corpus.position]
        if missing:
            raise ValidationError("evidence", f"question {q.id!r}: gem {missing[0]!r} is not in lattice "
                                              f"{corpus.name!r} ({len(missing)} missing); check the question set "
                                              "matches the lattice")
        out.append(np.array([corpus.position[e] for e in q.evidence], dtype=np.int64))
    return out


def ranks_in(scores: np.ndarray, evidence: np.ndarray) -> np.ndarray:
    """1-based ranks of ``evidence`` in one score row (descending; ties in lattice order);
    inf for a gem scored -inf (not retrieved)."""
    v = scores[evidence]
    greater = np.count_nonzero(scores[None, :] > v[:, None], axis=1)
    ties_before = np.array([np.count_nonzero(scores[:e] == s) for e, s in zip(evidence.tolist(), v.tolist())],
                           dtype=np.int64)
    ranks = (1 + greater + ties_before).astype(np.float64)
    ranks[~np.isfinite(v)] = np.inf
    return ranks


def keep_best(ranks: np.ndarray, evidence: np.ndarray, best: int, scores: np.ndarray, k: int) -> np.ndarray:
    """The evidence ranks after the floor and weighted rules' guarantee, as the live ranking
    applies it (core.knowledge.resonance): when the best gem by the retriever's score (``best``,
    similarity or fused) is not in the top ``k`` by the rule's score, it takes slot ``k`` and the
    gems from slot ``k`` down to where it was move one slot down (the one at ``k`` leaves the
    ranking). ``ranks``: the evidence's ranks by ``scores`` (one row)."""
    hit = evidence == best
    if not hit.any() and not (ranks >= k).any():
        return ranks  # every evidence gem above slot k: the kept gem moves none (and costs no O(N) count)
    best_rank = float(ranks_in(scores, np.array([best]))[0])
    if best_rank <= k:
        return ranks
    out = ranks.copy()
    out[(~hit) & (out >= k) & (out < best_rank)] += 1
    out[hit] = k
    return out


@dataclass
class _Prepared:
    """What one question's ranking needs that no parameter point of one retriever changes: its
    evidence, their ranks by the retriever's score among the candidates, and the best candidate
    by that score (the gem floor and weighted always keep)."""

    evidence: np.ndarray
    similarity_rank: np.ndarray
    best: int  # most similar candidate (-1: none)
    best_similarity: float


def _prepare(sim: np.ndarray, cand: np.ndarray, evidence: np.ndarray) -> _Prepared:
    s = np.where(cand, sim, -np.inf)
    best = int(np.argmax(s)) if s.size else -1
    if best >= 0 and not np.isfinite(s[best]):
        best = -1
    return _Prepared(evidence, ranks_in(s, evidence), best, float(s[best]) if best >= 0 else -np.inf)


def evaluate(corpus: EvalCorpus, questions: QuestionSet, points: Sequence[tuple[str, str, LatticeParams]] | None = None,
             ks: Sequence[int] = DEFAULT_KS, seed: int = 0, explain: bool = True,
             progress: Callable[[float], None] | None = None,
             query_embeddings: np.ndarray | None = None) -> list[PointResult]:
    """Rank every question under each ``(label, ranker name, params)`` point (default: the
    lattice's own scoring under its parameters) and summarise the metrics.

    ``explain``: also say, per missed evidence gem, why it is not in the top k (the Evaluate
    page; the CLI's table does without). ``query_embeddings`` (Q, d): the questions' vectors
    when they are given rather than embedded (synthetic timelines). Bounded memory: questions go in blocks whose (B, N)
    float32 matrices stay under BLOCK_BYTES. ``progress`` gets the done fraction (it may raise
    core.engine.Cancelled to stop).
    """
    points = list(points or [("lattice", "lattice", corpus.params)])
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValidationError("k", f"got {ks}; each k must be a whole number >= 1")
    evidence, asked = checked_evidence(corpus, questions)
    rankers: dict[str, Ranker] = {}
    for _, name, _ in points:
        if name not in rankers and name != "lattice":  # the lattice's rule: lattice_ranker on its retriever's block
            rankers[name] = make_ranker(name, corpus)
    hybrid = HybridScores()  # the BM25 index and gem days, built on the first hybrid point
    if query_embeddings is None:
        q_emb = corpus.embed([q.question for q in questions])
    else:
        q_emb = np.asarray(query_embeddings, dtype=np.float32)
        if q_emb.shape != (len(questions), corpus.embeddings.shape[1]):
            raise ValidationError("query_embeddings", f"need shape ({len(questions)}, {corpus.embeddings.shape[1]}), "
                                                      f"got {q_emb.shape}")
    n_q, n = len(questions), len(corpus)
    # questions in time order, so that each block's questions sharing a time are contiguous
    order = np.argsort(asked, kind="stable")
    block = max(1, min(n_q, BLOCK_BYTES // max(1, 12 * n)))
    ranks: list[list[np.ndarray]] = [[np.zeros(0)] * n_q for _ in points]
    missed: list[list[dict]] = [[] for _ in points]
    done, total = 0, n_q * len(points)
    for start in range(0, n_q, block):
        rows = order[start:start + block].tolist()
        qs = [questions.questions[i] for i in rows]
        sim = q_emb[rows] @ corpus.embeddings.T
        cand = np.stack([corpus.candidates(float(asked[i]), questions.questions[i].scope) for i in rows])
        blk = Block(sim, asked[rows], cand, [q.question for q in qs])
        retrieval: dict[str, tuple[Block, list[_Prepared | None]]] = {}

        def read(retriever: str) -> tuple[Block, list[_Prepared | None]]:
            """The block the lattice's rule reads under ``retriever`` and each question's preparation on it."""
            if retriever not in retrieval:
                b_r = hybrid.block(corpus, blk) if retriever == "hybrid" else blk
                retrieval[retriever] = (b_r, [_prepare(b_r.similarity[b], cand[b], evidence[i]) if evidence[i].size
                                              else None for b, i in enumerate(rows)])
            return retrieval[retriever]

        for p, (label, name, params) in enumerate(points):
            if name == "lattice":
                b_r, prepared = read(params.retriever)
                scores = lattice_ranker(corpus, b_r, params)
            else:
                prepared = read("similarity")[1]
                scores = rankers[name](corpus, blk, params)
            guarantee = name == "lattice" and params.scoring != "product"
            for b, i in enumerate(rows):
                prep = prepared[b]
                if prep is None:
                    continue
                r = ranks_in(scores[b], prep.evidence)
                if guarantee and prep.best >= 0 and prep.best_similarity >= params.min_score:
                    r = keep_best(r, prep.evidence, prep.best, scores[b], params.k)
                ranks[p][i] = r
                if explain and np.any(r > params.k):
                    missed[p].append(_miss(corpus, questions.questions[i], prep, r, cand[b], params, name))
            done += len(qs)
            if progress:
                progress(done / total)
    categories = [q.category for q in questions]
    return [PointResult(label, name, params, ranks[p], summarise(label, ranks[p], categories, ks, seed), missed[p])
            for p, (label, name, params) in enumerate(points)]


def _miss(corpus: EvalCorpus, q, prep: _Prepared, r: np.ndarray, cand: np.ndarray, params: LatticeParams,
          ranker: str) -> dict:
    """Why the evidence a question needed is not in the top k: not a candidate (created after the
    question, or out of its scope), suppressed by decay (similar enough to make the top k on
    similarity alone, pushed down by the lattice's score), or too dissimilar. Under the hybrid
    retriever "similarity" is its fused score (``similarity_rank`` the rank by it)."""
    what = "fused rank" if ranker == "lattice" and params.retriever == "hybrid" else "similarity rank"
    reasons = []
    for e, rank, sim_rank in zip(prep.evidence.tolist(), r.tolist(), prep.similarity_rank.tolist()):
        if rank <= params.k:
            continue
        if not cand[e]:
            reason = "not a candidate (created after the question, or out of its scope)"
        elif ranker == "lattice" and sim_rank <= params.k:
            reason = f"suppressed by decay: {what} {sim_rank:g}, score rank {rank:g}"
        elif ranker == "lattice" and params.scoring == "product" and not np.isfinite(rank):
            reason = f"suppressed by decay: below the minimum score ({what} {sim_rank:g})"
        else:
            reason = f"too dissimilar: {what} {sim_rank:g}"
        reasons.append({"gem": corpus.ids[e], "rank": rank, "similarity_rank": sim_rank, "reason": reason})
    return {"question": q.id, "text": q.question, "category": q.category, "evidence": reasons}
