"""Retrieval metrics from the ranks of each question's evidence, with bootstrap intervals.

A gem's rank is its 1-based position in the ranker's order: by score, descending, ties in
lattice order (a stable sort), so results are exactly reproducible. A gem that is not a
candidate (created after the question was asked, or out of the question's scope) has rank
inf. Per question, with evidence set E:

    recall@k = |{e in E: rank_e <= k}| / |E|
    MRR      = 1 / min_e rank_e                    (0 when no evidence is a candidate)
    nDCG@k   = sum_{e: rank_e <= k} 1 / log2(rank_e + 1)  /  sum_{i=1}^{min(|E|, k)} 1 / log2(i + 1)

Questions without evidence are reported but kept out of every average.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

DEFAULT_KS = (5, 10)
BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


def metric_names(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """``recall@k`` for each k, ``mrr``, ``ndcg@k`` for the largest k (the JSON contract's names)."""
    return [f"recall@{k}" for k in ks] + ["mrr", f"ndcg@{max(ks)}"]


def question_metrics(ranks: Sequence[np.ndarray], ks: Sequence[int] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-question metrics (arrays of len(ranks); NaN for a question without evidence)."""
    ks = sorted({int(k) for k in ks})
    n = len(ranks)
    out = {name: np.full(n, np.nan) for name in metric_names(ks)}
    k_ndcg = max(ks)
    discount = 1.0 / np.log2(np.arange(2, k_ndcg + 2))
    for q, r in enumerate(ranks):
        r = np.asarray(r, dtype=np.float64)
        if r.size == 0:
            continue
        for k in ks:
            out[f"recall@{k}"][q] = np.count_nonzero(r <= k) / r.size
        best = r.min()
        out["mrr"][q] = 0.0 if not np.isfinite(best) else 1.0 / best
        hit = r[r <= k_ndcg].astype(np.int64)
        out[f"ndcg@{k_ndcg}"][q] = discount[hit - 1].sum() / discount[:min(r.size, k_ndcg)].sum()
    return out


@dataclass(frozen=True)
class Estimate:
    """A mean over questions with its bootstrap percentile interval (``CONFIDENCE``)."""

    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}

    def text(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def bootstrap(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> Estimate:
    """Mean of the non-NaN ``values`` and its percentile bootstrap interval (resampling
    questions with replacement; seeded, so a report is reproducible)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    block = max(1, (1 << 22) // v.size)  # bounded memory: ~4M indices per block
    for start in range(0, samples, block):
        stop = min(samples, start + block)
        means[start:stop] = v[rng.integers(0, v.size, (stop - start, v.size))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Estimate(float(v.mean()), float(low), float(high), int(v.size))


@dataclass
class MetricReport:
    """Metrics of one ranker on one question set: overall and per category."""

    ranker: str
    overall: dict[str, Estimate]
    by_category: dict[str, dict[str, Estimate]]
    per_question: dict[str, np.ndarray] = field(repr=False)
    unanswerable: int = 0  # questions without evidence (kept out of the averages)

    def to_dict(self) -> dict:
        return {"ranker": self.ranker, "overall": {m: e.to_dict() for m, e in self.overall.items()},
                "by_category": {c: {m: e.to_dict() for m, e in ms.items()} for c, ms in self.by_category.items()},
                "questions": int(next(iter(self.overall.values())).n) if self.overall else 0,
                "unanswerable": self.unanswerable}


def summarise(ranker: str, ranks: Sequence[np.ndarray], categories: Sequence[str],
              ks: Sequence[int] = DEFAULT_KS, seed: int = 0) -> MetricReport:
    """Overall and per-category estimates of every metric."""
    per_q = question_metrics(ranks, ks)
    cats = np.asarray(categories, dtype=object)
    overall = {m: bootstrap(v, seed=seed) for m, v in per_q.items()}
    by_cat = {str(c): {m: bootstrap(v[cats == c], seed=seed) for m, v in per_q.items()} for c in sorted(set(cats))}
    unanswerable = sum(1 for r in ranks if len(r) == 0)
    return MetricReport(ranker, overall, by_cat, per_q, unanswerable)
