"""Resonance ranking: which gems answer a query, with every term of the score.

Long file: the single-query and the batch ranking share their data types and helpers, and
the batch's exactness argument (float32 bounds, widening) reads best next to the rule it keeps.

Resonance (docs/architecture.md) of a query q with gem i::

    s_i = max(0, cos_sim(q, g_i))          similarity, in [0, 1]
    r_i = s_i * c_i ** alpha               resonance (the seed's ``product`` scoring rule)

The lattice parameter ``scoring`` chooses the rule (:mod:`core.knowledge.scoring`):
``product`` above (min_score applies to r_i: decay alone can drop a gem), ``floor``
``s_i (phi + (1 - phi) c_i**alpha)`` and ``weighted`` (normalised relevance, recency and
importance), both with min_score on s_i and the most similar gem never dropped for age.
The top-k gems by score are found with one matrix-vector product and ``argpartition``
(O(N), no full sort). With ``beta != 0`` the k chosen gems are re-ranked greedily by
``r_i + beta * sum_{j already chosen} I_ij / k`` with the interference
``I_ij = cos(phi_i - phi_j) c_i c_j`` computed from the rank-2 phasor identity on the
k candidates only (never an N x N matrix). Every term is returned, per gem.
:func:`batch_resonance` scores Q queries in one float32 (Q, N) buffer, in place, and
re-scores a few candidates per query exactly (no (Q, N) float64 array).

Embeddings are float32 (half the memory of float64, ample for cosine similarity);
scores are computed and returned in float64. All scores are dimensionless.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.errors import LatticeError
from core.knowledge.base import EmbedderMismatchError, Embedder, embed_in_batches, normalise_rows
from core.knowledge.scoring import RULE_TERMS, ScoringRule, scoring_rule

# batch_resonance: one block of queries holds a float32 (rows, N) score buffer and the int64
# (rows, N) indices of its argpartition, 12 bytes per score. 2 GiB keeps 100 queries over 1e6
# gems (1.2 GB) in one block: splitting is slower, as BLAS re-packs all N embeddings per block.
BATCH_BLOCK_BYTES = 2 << 30
_BYTES_PER_SCORE = 12
_MARGIN = 16  # candidates per query beyond 2k, re-scored exactly (ties and float32 rounding)
_EXACT_CHUNK_BYTES = 8 << 20  # float64 rows gathered per step of the exact re-scoring
_U32, _U64 = 2.0 ** -24, 2.0 ** -53  # unit roundoff of float32 and float64
_RULE_ONLY = ("relevance", "recency", "importance", "floor", "kept_as_most_similar")
HYBRID_TERMS = ("bm25", "date_match", "fused")
"""The RankedGem fields of a hybrid ranking (core.knowledge.hybrid; None under similarity)."""


@dataclass(frozen=True)
class RankedGem:
    """One ranked gem with every term of its score (all dimensionless).

    ``similarity`` s_i = max(0, cos); ``coherence_factor`` = c_i**alpha; ``resonance`` the
    scoring rule's score before interference (product: s·c^α; floor: s·(φ + (1 − φ)·c^α);
    weighted: the weighted sum, in [0, 1]); ``interference`` = beta * sum_j I_ij / k over the
    gems ranked before it (0 when beta = 0); ``score`` = resonance + interference.
    The rule's own terms (None under the other rules): ``floor`` φ (floor); ``relevance``
    (min-max normalised s), ``recency`` (c^α) and ``importance`` (min-max normalised energy)
    (weighted); ``kept_as_most_similar``: the gem took the last slot because it is the most
    similar one and its score alone would have left it out (floor, weighted).
    The hybrid retriever's terms (None otherwise, :mod:`core.knowledge.hybrid`): ``bm25``
    (normalised, in [0, 1]), ``date_match`` (1: created on a day the question names) and
    ``fused``, the score the rule read in place of ``similarity``.
    """

    rank: int  # 1-based
    index: int  # position in the lattice
    gem_id: Any
    similarity: float
    coherence: float
    coherence_factor: float
    resonance: float
    interference: float
    score: float
    uncertainty: float
    relevance: float | None = None
    recency: float | None = None
    importance: float | None = None
    floor: float | None = None
    kept_as_most_similar: bool = False
    bm25: float | None = None
    date_match: float | None = None
    fused: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The terms of this gem's rule (a product ranking's dict has the seed's keys only)."""
        d = asdict(self)
        for name in _RULE_ONLY[:4] + HYBRID_TERMS:
            if d[name] is None:
                del d[name]
        if self.floor is None and self.relevance is None:  # product: the flag cannot be set
            del d["kept_as_most_similar"]
        return d


def ranking_columns(scoring: str = "product", retriever: str = "similarity") -> list[str]:
    """The RankedGem fields a ranking under ``scoring`` shows (its frame's columns, in order);
    a ``hybrid`` retriever's terms follow the similarity."""
    base = [f for f in RankedGem.__dataclass_fields__ if f not in _RULE_ONLY + HYBRID_TERMS]
    if retriever == "hybrid":
        at = base.index("similarity") + 1
        base = base[:at] + list(HYBRID_TERMS) + base[at:]
    return base + list(RULE_TERMS[scoring])


@dataclass(frozen=True)
class Ranking:
    """The result of one resonance query: ranked gems (immutable, safe to cache).

    ``best_resonance``: the highest score before interference over all gems (product; also
    when below min_score), or over the gems with s >= min_score (floor, weighted; 0 when none).
    ``n_similar``: gems with s >= min_score; ``best_similarity``: the highest s (0 when no gem).
    :func:`core.knowledge.explain_empty` reads them to say why a ranking is empty.
    """

    gems: tuple[RankedGem, ...]
    k: int
    alpha: float
    beta: float
    min_score: float
    best_resonance: float
    n_gems: int
    scoring: str = "product"
    n_similar: int = 0
    best_similarity: float = 0.0
    retriever: str = "similarity"

    def __len__(self) -> int:
        return len(self.gems)

    def __iter__(self):
        return iter(self.gems)

    @property
    def indices(self) -> list[int]:
        return [g.index for g in self.gems]

    @property
    def columns(self) -> list[str]:
        return ranking_columns(self.scoring, self.retriever)

    def to_frame(self) -> pd.DataFrame:
        """One row per ranked gem, every term of the rule a column (for tables and charts)."""
        cols = self.columns
        return pd.DataFrame([g.to_dict() for g in self.gems], columns=cols)


@dataclass(frozen=True)
class _Stats:
    """A query's similarity figures over all gems: how many pass min_score, the best one and
    where it is (lowest index among ties; -1 when not needed), and the range (weighted)."""

    n_similar: int
    best_similarity: float
    best_index: int = -1
    s_min: float = 0.0
    s_max: float = 0.0


def _as_query_matrix(queries: np.ndarray, dim: int) -> np.ndarray:
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise EmbedderMismatchError(
            f"query embedding has shape {np.shape(queries)} but the gems have dimension {dim}; "
            "embed queries with the lattice's embedder")
    if not np.isfinite(q).all():
        raise LatticeError("query embedding contains NaN or infinite values")
    return normalise_rows(q)


def _check_gems(embeddings: np.ndarray, lattice: Lattice) -> np.ndarray:
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[0] != len(lattice):
        raise LatticeError(
            f"embeddings have shape {emb.shape} but the lattice has {len(lattice)} gems; re-embed the lattice")
    return emb


def _rule(lattice: Lattice, p: LatticeParams) -> ScoringRule:
    return scoring_rule(lattice.coherence, lattice.energy, p)


def _similarities(queries: np.ndarray, embeddings: np.ndarray, lattice: Lattice) -> np.ndarray:
    emb = _check_gems(embeddings, lattice)
    q = _as_query_matrix(queries, emb.shape[1])
    emb32 = emb.astype(np.float32, copy=False)
    # one query: a matrix-vector product (BLAS gemv), measurably faster than a (1, d) @ (d, N) gemm
    raw = (emb32 @ q[0])[None, :] if q.shape[0] == 1 else q @ emb32.T
    sims = np.maximum(raw, 0.0).astype(np.float64)
    # float32 rounding can put a self-match at 1.0000001: clip to the formula's range
    return np.minimum(sims, 1.0, out=sims)


def _rule_scores(sims: np.ndarray, rule: ScoringRule) -> np.ndarray:
    if rule.mult is not None:
        return sims * rule.mult[None, :]
    out = np.empty_like(sims)
    for r in range(sims.shape[0]):  # weighted: each query's similarity range normalises its relevance
        row = sims[r]
        lo, hi = (float(row.min()), float(row.max())) if row.size else (0.0, 0.0)
        out[r] = rule.scores(row, slice(None), lo, hi)
    return out


def resonance_matrix(queries: np.ndarray, embeddings: np.ndarray, lattice: Lattice,
                     params: LatticeParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Similarities and scores (before interference) of Q queries with all N gems at once.

    One (Q, d) @ (d, N) product (float32 BLAS; a matrix-vector product for one query),
    then float64 for the scores.

    Parameters
    ----------
    queries : ndarray, shape (Q, d) or (d,)
        Query embeddings (re-normalised here; zero rows give similarity 0).
    embeddings : ndarray, shape (N, d)
        Gem embeddings, L2-normalised rows.
    lattice : Lattice
        Supplies coherence c_i (dimensionless, in [0, 1]) and energy (weighted scoring).
    params : LatticeParams, optional
        alpha and the scoring rule are read from it; default ``lattice.params``.

    Returns
    -------
    similarity, score : ndarray, shape (Q, N), float64
        s = max(0, cos) and the rule's score (product: r = s * c**alpha).
    """
    p = params or lattice.params
    rule = _rule(lattice, p)
    sims = _similarities(queries, embeddings, lattice)
    return sims, _rule_scores(sims, rule)


def _stats_of(sim: np.ndarray, p: LatticeParams, rule: ScoringRule) -> _Stats:
    if sim.size == 0:
        return _Stats(0, 0.0)
    best = int(np.argmax(sim))  # the first maximum: lowest lattice index among ties
    n_similar = int(np.count_nonzero(sim >= p.min_score))
    lo, hi = (float(sim.min()), float(sim[best])) if rule.scoring == "weighted" else (0.0, 0.0)
    return _Stats(n_similar, float(sim[best]), best if rule.on_similarity else -1, lo, hi)


def _rank_one(sim: np.ndarray, res: np.ndarray, lattice: Lattice, p: LatticeParams, rule: ScoringRule) -> Ranking:
    n = res.shape[0]
    stats = _stats_of(sim, p, rule)
    if rule.on_similarity:
        eligible = np.flatnonzero(sim >= p.min_score)
        best = float(res[eligible].max()) if eligible.size else 0.0
    else:
        best = float(res.max()) if n else 0.0
        eligible = np.flatnonzero(res >= p.min_score) if n else np.zeros(0, dtype=np.int64)
    k = min(p.k, eligible.size)
    if k == 0:
        return _ranking(np.zeros(0, dtype=np.int64), sim[:0], res[:0], best, n, lattice, p, rule, stats)
    r_el = res[eligible]
    if k < eligible.size:
        part = np.argpartition(-r_el, k - 1)[:k]
        # ties at the boundary (e.g. many r = 0) go to the lowest lattice index: deterministic
        thr = r_el[part].min()
        above = np.flatnonzero(r_el > thr)
        part = np.concatenate((above, np.flatnonzero(r_el == thr)[: k - above.size]))
    else:
        part = np.arange(eligible.size)
    cand = eligible[part]
    # deterministic order: score descending, then lattice index ascending
    cand = cand[np.lexsort((cand, -res[cand]))]
    return _ranking(cand, sim[cand], res[cand], best, n, lattice, p, rule, stats)


def _keep_most_similar(cand: np.ndarray, sim: np.ndarray, r: np.ndarray, p: LatticeParams, rule: ScoringRule,
                       stats: _Stats, kept_score: Callable[[], float]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Floor and weighted: when no chosen gem is as similar as the most similar one (s >=
    min_score), that gem takes the last slot. Returns the (new) arrays and its index, or -1."""
    if (not rule.on_similarity or cand.size == 0 or stats.best_index < 0 or stats.best_similarity < p.min_score
            or sim.max() >= stats.best_similarity):
        return cand, sim, r, -1
    cand, sim, r = cand.copy(), sim.copy(), r.copy()
    cand[-1], sim[-1], r[-1] = stats.best_index, stats.best_similarity, kept_score()
    return cand, sim, r, stats.best_index


def _ranking(cand: np.ndarray, sim: np.ndarray, r: np.ndarray, best: float, n: int, lattice: Lattice,
             p: LatticeParams, rule: ScoringRule, stats: _Stats,
             kept_score: Callable[[], float] | None = None) -> Ranking:
    """The Ranking of the chosen gems ``cand`` (ordered by score, then index), with their
    similarities ``sim`` and scores ``r``: the most similar gem kept, the beta re-ranking and
    every term. ``kept_score``: the most similar gem's score (default: from its similarity)."""
    def info(gems: tuple[RankedGem, ...]) -> Ranking:
        return Ranking(gems, p.k, p.alpha, p.beta, p.min_score, best, n, p.scoring, stats.n_similar,
                       stats.best_similarity)

    if cand.size == 0:
        return info(())
    if kept_score is None:
        kept_score = lambda: float(rule.scores(np.array([stats.best_similarity]),  # noqa: E731
                                               np.array([stats.best_index]), stats.s_min, stats.s_max)[0])
    cand, sim, r, kept = _keep_most_similar(cand, sim, r, p, rule, stats, kept_score)
    k = cand.size
    coh = np.asarray(lattice.coherence, dtype=np.float64)
    unc = np.asarray(lattice.uncertainty, dtype=np.float64)
    inter = np.zeros(k)
    if p.beta != 0.0 and k > 1:
        # I_ij = a_i a_j + b_i b_j with a = c cos(phi), b = c sin(phi): k x 2 components only
        phi = np.asarray(lattice.phase, dtype=np.float64)[cand]
        comp = np.column_stack((coh[cand] * np.cos(phi), coh[cand] * np.sin(phi)))
        chosen = np.zeros(k, dtype=bool)
        acc = np.zeros(k)  # sum over chosen j of I_ij, for every candidate i
        order = np.empty(k, dtype=np.int64)
        for step in range(k):
            total = np.where(chosen, -np.inf, r + p.beta * acc / p.k)
            pick = int(np.argmax(total))  # ties: first (= higher score, lower index)
            order[step] = pick
            inter[step] = p.beta * acc[pick] / p.k
            chosen[pick] = True
            acc += comp @ comp[pick]
        cand, sim, r = cand[order], sim[order], r[order]
    factor = np.power(coh[cand], p.alpha)
    none = [None] * k
    rel, rec, imp, flo = none, none, none, none
    if rule.scoring == "weighted":
        rel = rule.relevance(sim, stats.s_min, stats.s_max).tolist()
        rec, imp = rule.factor[cand].tolist(), rule.importance[cand].tolist()
    elif rule.scoring == "floor":
        flo = [rule.phi] * k
    gems = tuple(
        RankedGem(rank=pos + 1, index=int(i), gem_id=lattice.ids[int(i)], similarity=float(sim[pos]),
                  coherence=float(coh[i]), coherence_factor=float(factor[pos]), resonance=float(r[pos]),
                  interference=float(inter[pos]), score=float(r[pos] + inter[pos]), uncertainty=float(unc[i]),
                  relevance=rel[pos], recency=rec[pos], importance=imp[pos], floor=flo[pos],
                  kept_as_most_similar=bool(int(i) == kept))
        for pos, i in enumerate(cand))
    return info(gems)


def similarities(queries: np.ndarray, embeddings: np.ndarray, lattice: Lattice) -> np.ndarray:
    """(Q, N) float64 ``min(1, max(0, cos_sim))`` of Q query embeddings with the gems (what
    :func:`resonance` ranks by; the hybrid retriever fuses it with BM25)."""
    return _similarities(queries, embeddings, lattice)


def rank_similarities(sims: np.ndarray, lattice: Lattice, params: LatticeParams | None = None) -> Ranking:
    """The Ranking :func:`resonance` gives for one query whose similarities (N,) in [0, 1] are
    ``sims``: the scoring rule, min_score, the most similar gem kept and beta, all on ``sims``."""
    p = params or lattice.params
    rule = _rule(lattice, p)
    s = np.asarray(sims, dtype=np.float64).reshape(1, -1)
    if s.shape[1] != len(lattice):
        raise LatticeError(f"{s.shape[1]} similarities for a lattice of {len(lattice)} gems")
    return _rank_one(s[0], _rule_scores(s, rule)[0], lattice, p, rule)


def resonance(query: np.ndarray, embeddings: np.ndarray, lattice: Lattice,
              params: LatticeParams | None = None) -> Ranking:
    """Rank the gems of ``lattice`` by their score under the lattice's scoring rule.

    Parameters
    ----------
    query : ndarray, shape (d,)
        Query embedding from the lattice's embedder.
    embeddings : ndarray, shape (N, d)
        Gem embeddings in lattice order, L2-normalised float32 rows.
    lattice : Lattice
        Current state (evolve a wall-clock lattice to now before calling).
    params : LatticeParams, optional
        scoring (with coherence_floor or the three weights), alpha, beta, k, min_score;
        default ``lattice.params``.

    Returns
    -------
    Ranking
        Up to k gems, best first, every term included: under product scoring those with
        ``resonance >= min_score``; under floor and weighted those with ``similarity >=
        min_score``, the most similar one always among them.
    """
    p = params or lattice.params
    rule = _rule(lattice, p)
    sims = _similarities(query, embeddings, lattice)
    return _rank_one(sims[0], _rule_scores(sims, rule)[0], lattice, p, rule)


def batch_resonance(queries: np.ndarray, embeddings: np.ndarray, lattice: Lattice,
                    params: LatticeParams | None = None, *, block_bytes: int = BATCH_BLOCK_BYTES) -> list[Ranking]:
    """Rank the gems for Q queries at once (sweeps, evaluations): the rankings of
    ``[resonance(q, ...) for q in queries]``, at the cost of one matrix product.

    Per block of queries: one float32 (rows, N) buffer takes the (rows, d) @ (d, N)
    product and becomes, in place, each gem's float32 key: ``max(0, cos) * m_i`` with
    ``m_i = c**alpha`` (product) or ``phi + (1 - phi) c**alpha`` (floor), or
    ``a_q max(0, cos) + b_i`` (weighted, a_q from the query's similarity range); under floor
    and weighted, gems whose similarity is surely below min_score get a negative key. One 2-D
    ``argpartition`` picks each query's ``2k + 16`` best candidates. Those candidates
    are then re-scored exactly (the float32 products summed in float64, see
    :func:`_exact_similarity`) and ranked with the single-query rule (ties to the lowest
    lattice index, ``min_score``, the most similar gem kept, beta re-ranking, every term
    float64). A proven bound on the float32 rounding says whether a gem outside the
    candidates could still belong in the top k (many tied gems); for such a query the
    candidates are widened to every gem the bound cannot rule out (under floor and weighted
    with fewer than k similar gems among the candidates: every gem not ruled out by its
    similarity), so the result is always the exact top k. The similarity figures (best
    similarity and its gem; under floor and weighted the count at or above min_score and the
    weighted rule's range) are exact too: float32 passes over the row, then the few gems
    within the rounding bound re-scored. No (Q, N) float64 array is made.

    Parameters
    ----------
    queries : ndarray, shape (Q, d) or (d,)
        Query embeddings (re-normalised here). Q = 0 gives ``[]``.
    embeddings : ndarray, shape (N, d)
        Gem embeddings in lattice order, L2-normalised float32 rows.
    lattice : Lattice
        Current state.
    params : LatticeParams, optional
        scoring, alpha, beta, k, min_score; default ``lattice.params``.
    block_bytes : int, optional
        Memory for one block of queries, in bytes: 12 bytes per (query, gem) score, the
        float32 score and the int64 index of its argpartition; default
        ``BATCH_BLOCK_BYTES`` (2 GiB: 100 queries over 1e6 gems, 1.2 GB, in one block).
        Floor and weighted add one row of N bytes (a mask) at a time.

    Returns
    -------
    list of Ranking
        One per query, in order. Similarities are exact dot products of the float32
        vectors; :func:`resonance` rounds them to float32 first, so the two agree to ~1e-7,
        and rank alike except gems whose scores are closer than that, which the
        single-query product may round apart (even identical gems, at large N) and this
        one orders exactly (ties to the lowest index). Under product scoring ``n_similar``
        counts the float32 similarities (what explains an empty ranking; min_score does not
        select on s there), so it may differ by gems within ~1e-6 of min_score."""
    p = params or lattice.params
    rule = _rule(lattice, p)
    emb = _check_gems(embeddings, lattice)
    q_in = np.asarray(queries, dtype=np.float32)
    q32 = _as_query_matrix(q_in.reshape(0, emb.shape[1]) if q_in.shape == (0,) else q_in, emb.shape[1])  # [] too
    n_q, n = q32.shape[0], emb.shape[0]
    if n_q == 0 or n == 0:
        return [Ranking((), p.k, p.alpha, p.beta, p.min_score, 0.0, n, p.scoring) for _ in range(n_q)]
    emb32 = emb.astype(np.float32, copy=False)
    n_cand = min(n, 2 * p.k + _MARGIN)
    unit_slack, g_max = _rounding_slack(emb32)
    mult_max = max(float(rule.mult.max()), 0.0) if rule.mult is not None else 0.0
    # even blocks of at most block_bytes; splitting costs time (BLAS re-packs E per block)
    rows = max(1, int(block_bytes) // (_BYTES_PER_SCORE * n))
    rows = -(-n_q // -(-n_q // rows))
    scores = np.empty((min(rows, n_q), n), dtype=np.float32)
    mult32 = rule.mult.astype(np.float32) if rule.mult is not None else None
    base32 = None
    if rule.scoring == "weighted":  # b_i of the key a_q s + b_i
        base32 = ((rule.w_recency * rule.factor + rule.w_importance * rule.importance)
                  / rule.weight_sum).astype(np.float32)
    out: list[Ranking] = []
    for start in range(0, n_q, rows):
        block = q32[start:start + rows]
        s = scores[: block.shape[0]]
        np.matmul(block, emb32.T, out=s)
        raw_min = s.min(axis=1) if rule.scoring == "weighted" else None  # a surely negative cosine: s_min = 0
        np.maximum(s, 0.0, out=s)
        q64s = [block[r].astype(np.float64) for r in range(s.shape[0])]
        qn = [float(np.sqrt(q @ q)) * (1 + 2.0 ** -20) for q in q64s]
        ds = [unit_slack * v for v in qn]  # |float32 dot - exact dot| <= ds for every gem of the row
        stats, bounds = [], []
        for r in range(s.shape[0]):
            st, maybe = _exact_stats(emb32, s[r], q64s[r], ds[r], max(0.0, g_max * qn[r] - 1.0), p, rule,
                                     None if raw_min is None else float(raw_min[r]))
            stats.append(st)
            if rule.on_similarity:
                bounds.append(_to_keys(s[r], st, maybe, ds[r], p, rule, mult32, mult_max, base32))
        if not rule.on_similarity:  # product: the seed's path, one in-place pass over the block
            bounds = [_Bound(ds[r] * mult_max * (1 + 2.0 ** -20)) for r in range(s.shape[0])]
            np.multiply(s, mult32, out=s)
        if n_cand < n:
            top = np.argpartition(s, n - n_cand, axis=1)[:, n - n_cand:].copy()  # frees the (rows, N) indices
            floor = s[np.arange(s.shape[0]), top[:, 0]]  # no gem outside top scores above it
        for r in range(s.shape[0]):
            cand, low = (top[r], float(floor[r])) if n_cand < n else (np.arange(n), None)
            out.append(_rank_candidates(emb32, rule, q64s[r], cand, s[r], low, bounds[r], lattice, p, stats[r]))
    return out


@dataclass(frozen=True)
class _Bound:
    """How far a gem's exact score can exceed what its float32 key says: exact score <=
    ``key * (1 + 2**-21) + slack - shift + margin`` (``shift``: weighted's a_q * s_min,
    ``margin``: the float64 rounding of the weighted formula)."""

    slack: float
    shift: float = 0.0
    margin: float = 0.0

    def outside(self, key: float) -> float:
        return key * (1 + 2.0 ** -21) + self.slack - self.shift + self.margin

    def threshold(self, level: float) -> np.float32:
        """The lowest float32 key whose gem could reach the exact score ``level``."""
        x = (level - self.slack + self.shift - self.margin) / (1 + 2.0 ** -21)
        return _f32_below(x)


def _f32_below(x: float) -> np.float32:
    """The largest float32 <= x (a comparison threshold that never rounds up past a gem)."""
    v = np.float32(x)
    return np.nextafter(v, np.float32(-np.inf)) if float(v) > x else v


def _f32_above(x: float) -> np.float32:
    v = np.float32(x)
    return np.nextafter(v, np.float32(np.inf)) if float(v) < x else v


def _exact_stats(emb32: np.ndarray, row: np.ndarray, q: np.ndarray, sl: float, excess: float, p: LatticeParams,
                 rule: ScoringRule, raw_min: float | None) -> tuple[_Stats, np.ndarray | None]:
    """Exact similarity figures of one query from its float32 similarities ``row``: only the
    gems within the rounding bound of a threshold are re-scored. ``sl`` bounds the float32
    dot product's error, ``excess`` how far a float32 similarity may exceed the clip at 1.
    Also returns the gems not surely below min_score (None when min_score <= 0)."""
    n = row.size
    m32 = min(float(row.max()), 1.0)
    near = np.flatnonzero(row >= _f32_below(m32 - 2 * sl))  # ascending: argmax picks the lowest index
    near_sim = _exact_similarity(emb32, near, q)
    j = int(np.argmax(near_sim))
    best_index, best_sim = int(near[j]), float(near_sim[j])
    maybe = None
    if p.min_score <= 0:
        n_similar = n
    elif not rule.on_similarity:
        # product: min_score does not select on s, the count only explains an empty ranking; the
        # float32 count (one pass) may differ from the exact one by gems within ~1e-6 of min_score
        n_similar = int(np.count_nonzero(row >= _f32_above(p.min_score)))
    else:
        # one pass over the row: the gems that may pass (usually a few %), then the few within the
        # bound of min_score decided exactly
        lo, hi = _f32_below(p.min_score - sl), _f32_above(p.min_score + sl)
        maybe = np.flatnonzero(row >= lo)
        values = row[maybe]
        sure = values >= hi
        n_similar = int(np.count_nonzero(sure))
        band = maybe[~sure]
        if band.size:
            n_similar += int(np.count_nonzero(_exact_similarity(emb32, band, q) >= p.min_score))
    s_min = 0.0
    if rule.scoring == "weighted" and not (raw_min is not None and raw_min < -sl):
        low = np.flatnonzero(row <= _f32_above(float(row.min()) + 2 * sl + excess))
        s_min = float(_exact_similarity(emb32, low, q).min())
    return _Stats(n_similar, best_sim, best_index, s_min, best_sim), maybe


def _to_keys(row: np.ndarray, st: _Stats, maybe: np.ndarray | None, sl: float, p: LatticeParams,
             rule: ScoringRule, mult32: np.ndarray | None, mult_max: float, base32: np.ndarray | None) -> _Bound:
    """Turn one float32 similarity row into the rule's keys (>= 0), in place; a gem surely
    below min_score gets its key minus a constant larger than any key, so below every key.
    Returns the row's bound.

    The ruled-out keys stay as distinct as the others: one constant for ~95 % of the row
    (min_score 0.05 on unrelated gems) made the 2-D argpartition four times slower. ``maybe``:
    the gems not surely below min_score (from :func:`_exact_stats`, the same bound); their
    keys are saved and put back exactly after the whole row is shifted (one pass, no mask)."""
    lo = _f32_below(p.min_score - sl)
    if rule.mult is not None:  # floor: keys s·m <= 1
        np.multiply(row, mult32, out=row)
        bound, top = _Bound(sl * mult_max * (1 + 2.0 ** -20)), 1.0
    else:  # weighted: score = a (s - s_min) + b = key - a s_min, with key = a s + b <= a + 1
        span = st.s_max - st.s_min
        a = rule.w_relevance / (rule.weight_sum * span) if span > 0 else 0.0
        huge = a > 1e30  # similarities all but equal: no useful float32 key, every gem is re-scored
        a32 = np.float32(0.0 if huge else a)
        np.multiply(row, a32, out=row)
        np.add(row, base32, out=row)
        shift = a * st.s_min if span > 0 else -rule.w_relevance / rule.weight_sum
        bound = _Bound(np.inf if huge else sl * a * (1 + 2.0 ** -20) + 2.0 ** -140, shift, 2.0 ** -47)
        top = float(a32) * 1.01 + 1.0
    if lo > 0 and maybe is not None and maybe.size < row.size:
        kept = row[maybe]
        np.subtract(row, np.float32(2 * top + 1), out=row)
        row[maybe] = kept
    return bound


def _rounding_slack(emb32: np.ndarray) -> tuple[float, float]:
    """Bound on how far a float32 similarity ``max(0, raw)`` of :func:`batch_resonance` can
    differ from the exact one, per unit of query norm, and the largest gem norm ``|g|``.

    The float32 dot product of q and g is within ``gamma_d |q| |g|`` of the exact one for
    any summation order (``gamma_d = d u / (1 - d u)``, u = 2**-24; Cauchy-Schwarz), and the
    float64 re-scoring within ``gamma_d`` with u = 2**-53. ``|g|``: the largest row norm
    (one pass over E, float32 sums divided by ``1 - gamma_d``; NaN or infinite rows refused).
    A score's bound is this times the rule's largest multiplier; its own rounding is added
    per query.
    """
    d = emb32.shape[1]
    g32 = d * _U32 / (1 - d * _U32)
    g64 = d * _U64 / (1 - d * _U64)
    sq = float(np.einsum("ij,ij->i", emb32, emb32).max())
    if not np.isfinite(sq):
        raise LatticeError("gem embeddings contain NaN, infinite or huge values; re-embed the lattice")
    g_max = np.sqrt(sq / (1 - g32)) * (1 + 2.0 ** -20)
    return float((g32 + g64) * g_max * (1 + 2.0 ** -20) + (1 + g_max) * 2.0 ** -140), float(g_max)


def _exact_similarity(emb32: np.ndarray, idx: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``min(1, max(0, g_i . q))`` for the gems ``idx``, float64, exact to ~d * 2**-53.

    Every product of two float32 numbers is exact in float64, and numpy sums each row
    pairwise in a fixed order: the same row gives the same value wherever it sits, so
    identical gems tie exactly (a BLAS product may round them apart). Gathered in steps
    of ``_EXACT_CHUNK_BYTES``.
    """
    out = np.zeros(idx.size)
    if q.any():
        step = max(1, _EXACT_CHUNK_BYTES // (8 * emb32.shape[1]))
        for a in range(0, idx.size, step):
            g = emb32[idx[a:a + step]].astype(np.float64)
            g *= q
            out[a:a + step] = g.sum(axis=1)
    np.maximum(out, 0.0, out=out)
    # float32 rounding can put a self-match at 1.0000001: clip to the formula's range
    return np.minimum(out, 1.0, out=out)


def _rank_candidates(emb32: np.ndarray, rule: ScoringRule, q: np.ndarray, cand: np.ndarray, scores: np.ndarray,
                     floor: float | None, bound: _Bound, lattice: Lattice, p: LatticeParams, stats: _Stats) -> Ranking:
    """Exact ranking of one query from its candidate gems ``cand``.

    ``scores`` are the query's float32 keys over all N gems, ``floor`` the lowest key
    among ``cand`` (None: ``cand`` is every gem), so no gem outside ``cand`` has an exact
    score above ``bound.outside(floor)``. When that bound cannot rule out an outside gem
    (the k-th score, or min_score, or the best one, is not above it), the candidates become
    every gem whose bound reaches that level, and the ranking is exact.
    """
    sim = _exact_similarity(emb32, cand, q)
    res = rule.scores(sim, cand, stats.s_min, stats.s_max)
    order = np.lexsort((cand, -res))  # score descending, then lattice index ascending
    cand, sim, res = cand[order], sim[order], res[order]
    if rule.on_similarity:
        chosen = np.flatnonzero(sim >= p.min_score)[: p.k]
        k = chosen.size
        best = float(res[chosen[0]]) if k else 0.0
    else:
        k = min(p.k, int(np.count_nonzero(res >= p.min_score)))  # the eligible ones are a prefix
        chosen = np.arange(k)
        best = float(res[0])
    if floor is not None:
        outside = bound.outside(floor)
        if rule.on_similarity:
            # a negative key among them: every gem not ruled out by its similarity is a candidate
            ok = floor < 0 or (k == p.k and res[chosen[-1]] > outside)
            thr = bound.threshold(float(res[chosen[-1]])) if k == p.k else np.float32(0.0)
        else:
            level = float(res[k - 1]) if k == p.k else min(p.min_score, float(res[0]))
            ok = res[0] > outside and (res[k - 1] if k == p.k else p.min_score) > outside
            thr = bound.threshold(level)
        if not ok:  # an outside gem may tie or beat: take every gem whose key could reach the level
            wide = np.flatnonzero(scores >= thr)
            return _rank_candidates(emb32, rule, q, wide, scores, None, bound, lattice, p, stats)
    return _ranking(cand[chosen], sim[chosen], res[chosen], best, emb32.shape[0], lattice, p, rule, stats)


def embed_queries(embedder: Embedder, questions: Sequence[str], batch_size: int = 256,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Embed many questions at once (Q, d) float32, for :func:`batch_resonance`."""
    return embed_in_batches(embedder, list(questions), batch_size=batch_size, progress=progress)


def rankings_frame(questions: Sequence[str], rankings: Sequence[Ranking]) -> pd.DataFrame:
    """Long table of a batch: one row per (question, ranked gem), every term a column."""
    frames = []
    for qi, (question, ranking) in enumerate(zip(questions, rankings)):
        df = ranking.to_frame()
        df.insert(0, "question", question)
        df.insert(0, "query", qi)
        frames.append(df)
    if not frames:
        cols = rankings[0].columns if len(rankings) else ranking_columns()
        return pd.DataFrame(columns=["query", "question", *cols])
    return pd.concat(frames, ignore_index=True)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine of a few row vectors (for near-duplicate checks), float64."""
    v = normalise_rows(np.asarray(vectors, dtype=np.float64))
    return v @ v.T
