"""Frozen copy of core/knowledge/resonance.py as it was before the scoring rules (issue 13,
commit 46f6bed): the seed's product rule, single and batch. Never edit it: the tests in
test_scoring_rules.py check that product scoring is still this, bit for bit.

Long file: a verbatim copy, kept whole so that the comparison is with the real former code.
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

# batch_resonance: one block of queries holds a float32 (rows, N) score buffer and the int64
# (rows, N) indices of its argpartition, 12 bytes per score. 2 GiB keeps 100 queries over 1e6
# gems (1.2 GB) in one block: splitting is slower, as BLAS re-packs all N embeddings per block.
BATCH_BLOCK_BYTES = 2 << 30
_BYTES_PER_SCORE = 12
_MARGIN = 16  # candidates per query beyond 2k, re-scored exactly (ties and float32 rounding)
_EXACT_CHUNK_BYTES = 8 << 20  # float64 rows gathered per step of the exact re-scoring
_U32, _U64 = 2.0 ** -24, 2.0 ** -53  # unit roundoff of float32 and float64


@dataclass(frozen=True)
class RankedGem:
    """One ranked gem with every term of its score.

    ``similarity`` s_i = max(0, cos); ``coherence_factor`` = c_i**alpha;
    ``resonance`` r_i = s_i * c_i**alpha; ``interference`` = beta * sum_j I_ij / k over
    the gems ranked before it (0 when beta = 0); ``score`` = resonance + interference.
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Ranking:
    """The result of one resonance query: ranked gems (immutable, safe to cache)."""

    gems: tuple[RankedGem, ...]
    k: int
    alpha: float
    beta: float
    min_score: float
    best_resonance: float  # highest r_i over all gems (also when below min_score)
    n_gems: int

    def __len__(self) -> int:
        return len(self.gems)

    def __iter__(self):
        return iter(self.gems)

    @property
    def indices(self) -> list[int]:
        return [g.index for g in self.gems]

    def to_frame(self) -> pd.DataFrame:
        """One row per ranked gem, every score term a column (for tables and charts)."""
        cols = list(RankedGem.__dataclass_fields__)
        return pd.DataFrame([g.to_dict() for g in self.gems], columns=cols)


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


def resonance_matrix(queries: np.ndarray, embeddings: np.ndarray, lattice: Lattice,
                     params: LatticeParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Similarities and resonances of Q queries with all N gems at once.

    One (Q, d) @ (d, N) product (float32 BLAS; a matrix-vector product for one query),
    then float64 for the scores.

    Parameters
    ----------
    queries : ndarray, shape (Q, d) or (d,)
        Query embeddings (re-normalised here; zero rows give similarity 0).
    embeddings : ndarray, shape (N, d)
        Gem embeddings, L2-normalised rows.
    lattice : Lattice
        Supplies coherence c_i (dimensionless, in [0, 1]).
    params : LatticeParams, optional
        alpha is read from it; default ``lattice.params``.

    Returns
    -------
    similarity, resonance : ndarray, shape (Q, N), float64
        s = max(0, cos) and r = s * c**alpha.
    """
    p = params or lattice.params
    emb = _check_gems(embeddings, lattice)
    q = _as_query_matrix(queries, emb.shape[1])
    emb32 = emb.astype(np.float32, copy=False)
    # one query: a matrix-vector product (BLAS gemv), measurably faster than a (1, d) @ (d, N) gemm
    raw = (emb32 @ q[0])[None, :] if q.shape[0] == 1 else q @ emb32.T
    sims = np.maximum(raw, 0.0).astype(np.float64)
    # float32 rounding can put a self-match at 1.0000001: clip to the formula's range
    np.minimum(sims, 1.0, out=sims)
    factor = np.power(np.asarray(lattice.coherence, dtype=np.float64), p.alpha)
    return sims, sims * factor[None, :]


def _rank_one(sim: np.ndarray, res: np.ndarray, lattice: Lattice, p: LatticeParams) -> Ranking:
    n = res.shape[0]
    best = float(res.max()) if n else 0.0
    eligible = np.flatnonzero(res >= p.min_score) if n else np.zeros(0, dtype=np.int64)
    k = min(p.k, eligible.size)
    if k == 0:
        return Ranking((), p.k, p.alpha, p.beta, p.min_score, best, n)
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
    # deterministic order: resonance descending, then lattice index ascending
    cand = cand[np.lexsort((cand, -res[cand]))]
    return _ranking(cand, sim[cand], res[cand], best, n, lattice, p)


def _ranking(cand: np.ndarray, sim: np.ndarray, r: np.ndarray, best: float, n: int, lattice: Lattice,
             p: LatticeParams) -> Ranking:
    """The Ranking of the chosen gems ``cand`` (ordered by resonance, then index), with
    their similarities ``sim`` and resonances ``r``: the beta re-ranking and every term."""
    k = cand.size
    if k == 0:
        return Ranking((), p.k, p.alpha, p.beta, p.min_score, best, n)
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
            pick = int(np.argmax(total))  # ties: first (= higher resonance, lower index)
            order[step] = pick
            inter[step] = p.beta * acc[pick] / p.k
            chosen[pick] = True
            acc += comp @ comp[pick]
        cand, sim, r = cand[order], sim[order], r[order]
    factor = np.power(coh[cand], p.alpha)
    gems = tuple(
        RankedGem(rank=pos + 1, index=int(i), gem_id=lattice.ids[int(i)], similarity=float(sim[pos]),
                  coherence=float(coh[i]), coherence_factor=float(factor[pos]), resonance=float(r[pos]),
                  interference=float(inter[pos]), score=float(r[pos] + inter[pos]), uncertainty=float(unc[i]))
        for pos, i in enumerate(cand))
    return Ranking(gems, p.k, p.alpha, p.beta, p.min_score, best, n)


def resonance(query: np.ndarray, embeddings: np.ndarray, lattice: Lattice,
              params: LatticeParams | None = None) -> Ranking:
    """Rank the gems of ``lattice`` by resonance with one query embedding.

    Parameters
    ----------
    query : ndarray, shape (d,)
        Query embedding from the lattice's embedder.
    embeddings : ndarray, shape (N, d)
        Gem embeddings in lattice order, L2-normalised float32 rows.
    lattice : Lattice
        Current state (evolve a wall-clock lattice to now before calling).
    params : LatticeParams, optional
        alpha, beta, k, min_score; default ``lattice.params``.

    Returns
    -------
    Ranking
        Up to k gems with ``resonance >= min_score``, best first, every term included.
    """
    p = params or lattice.params
    sims, res = resonance_matrix(query, embeddings, lattice, p)
    return _rank_one(sims[0], res[0], lattice, p)


def batch_resonance(queries: np.ndarray, embeddings: np.ndarray, lattice: Lattice,
                    params: LatticeParams | None = None, *, block_bytes: int = BATCH_BLOCK_BYTES) -> list[Ranking]:
    """Rank the gems for Q queries at once (sweeps, evaluations): the rankings of
    ``[resonance(q, ...) for q in queries]``, at the cost of one matrix product.

    Per block of queries: one float32 (rows, N) buffer takes the (rows, d) @ (d, N)
    product and becomes, in place, ``max(0, cos) * c**alpha`` (float32); one 2-D
    ``argpartition`` picks each query's ``2k + 16`` best candidates. Those candidates
    are then re-scored exactly (the float32 products summed in float64, see
    :func:`_exact_similarity`) and ranked with the single-query rule (ties to the lowest
    lattice index, ``min_score``, beta re-ranking, every term float64). A proven bound on the
    float32 rounding says whether a gem outside the candidates could still belong in
    the top k (many tied gems); for such a query the candidates are widened to every gem
    the bound cannot rule out, so the result is always the exact top k. No (Q, N) float64
    array is made.

    Parameters
    ----------
    queries : ndarray, shape (Q, d) or (d,)
        Query embeddings (re-normalised here). Q = 0 gives ``[]``.
    embeddings : ndarray, shape (N, d)
        Gem embeddings in lattice order, L2-normalised float32 rows.
    lattice : Lattice
        Current state.
    params : LatticeParams, optional
        alpha, beta, k, min_score; default ``lattice.params``.
    block_bytes : int, optional
        Memory for one block of queries, in bytes: 12 bytes per (query, gem) score, the
        float32 score and the int64 index of its argpartition; default
        ``BATCH_BLOCK_BYTES`` (2 GiB: 100 queries over 1e6 gems, 1.2 GB, in one block).

    Returns
    -------
    list of Ranking
        One per query, in order. Similarities are exact dot products of the float32
        vectors; :func:`resonance` rounds them to float32 first, so the two agree to ~1e-7,
        and rank alike except gems whose resonances are closer than that, which the
        single-query product may round apart (even identical gems, at large N) and this
        one orders exactly (ties to the lowest index).
    """
    p = params or lattice.params
    emb = _check_gems(embeddings, lattice)
    q_in = np.asarray(queries, dtype=np.float32)
    q32 = _as_query_matrix(q_in.reshape(0, emb.shape[1]) if q_in.shape == (0,) else q_in, emb.shape[1])  # [] too
    n_q, n = q32.shape[0], emb.shape[0]
    if n_q == 0 or n == 0:
        return [Ranking((), p.k, p.alpha, p.beta, p.min_score, 0.0, n) for _ in range(n_q)]
    emb32 = emb.astype(np.float32, copy=False)
    factor = np.power(np.asarray(lattice.coherence, dtype=np.float64), p.alpha)
    n_cand = min(n, 2 * p.k + _MARGIN)
    slack = _rounding_slack(emb32, factor)
    # even blocks of at most block_bytes; splitting costs time (BLAS re-packs E per block)
    rows = max(1, int(block_bytes) // (_BYTES_PER_SCORE * n))
    rows = -(-n_q // -(-n_q // rows))
    scores = np.empty((min(rows, n_q), n), dtype=np.float32)
    factor32 = factor.astype(np.float32)
    out: list[Ranking] = []
    for start in range(0, n_q, rows):
        block = q32[start:start + rows]
        s = scores[: block.shape[0]]
        np.matmul(block, emb32.T, out=s)
        np.maximum(s, 0.0, out=s)
        np.multiply(s, factor32, out=s)
        if n_cand < n:
            top = np.argpartition(s, n - n_cand, axis=1)[:, n - n_cand:].copy()  # frees the (rows, N) indices
            floor = s[np.arange(s.shape[0]), top[:, 0]]  # no gem outside top scores above it
        for r in range(s.shape[0]):
            q64 = block[r].astype(np.float64)
            row_slack = slack * (float(np.sqrt(q64 @ q64)) * (1 + 2.0 ** -20))
            cand, low = (top[r], float(floor[r])) if n_cand < n else (np.arange(n), None)
            out.append(_rank_candidates(emb32, factor, q64, cand, s[r], low, row_slack, lattice, p))
    return out


def _rounding_slack(emb32: np.ndarray, factor: np.ndarray) -> float:
    """Bound on how far a float32 score ``max(0, raw) * c**alpha`` of :func:`batch_resonance`
    can understate the exact resonance, per unit of query norm.

    The float32 dot product of q and g is within ``gamma_d |q| |g|`` of the exact one for
    any summation order (``gamma_d = d u / (1 - d u)``, u = 2**-24; Cauchy-Schwarz), and the
    float64 re-scoring within ``gamma_d`` with u = 2**-53; times the largest factor
    ``c**alpha``. ``|g|``: the largest row norm (one pass over E, float32 sums divided by
    ``1 - gamma_d``; NaN or infinite rows refused). The score's own rounding is added per query.
    """
    d = emb32.shape[1]
    g32 = d * _U32 / (1 - d * _U32)
    g64 = d * _U64 / (1 - d * _U64)
    sq = float(np.einsum("ij,ij->i", emb32, emb32).max())
    if not np.isfinite(sq):
        raise LatticeError("gem embeddings contain NaN, infinite or huge values; re-embed the lattice")
    g_max = np.sqrt(sq / (1 - g32)) * (1 + 2.0 ** -20)
    return float((g32 + g64) * g_max * max(float(factor.max()), 0.0) * (1 + 2.0 ** -20) + (1 + g_max) * 2.0 ** -140)


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


def _rank_candidates(emb32: np.ndarray, factor: np.ndarray, q: np.ndarray, cand: np.ndarray, scores: np.ndarray,
                     floor: float | None, slack: float, lattice: Lattice, p: LatticeParams) -> Ranking:
    """Exact ranking of one query from its candidate gems ``cand``.

    ``scores`` are the query's float32 scores over all N gems, ``floor`` the lowest score
    among ``cand`` (None: ``cand`` is every gem), so no gem outside ``cand`` has an exact
    resonance above ``floor * (1 + 2**-21) + slack``. When that bound cannot rule out an
    outside gem (the k-th resonance, or min_score, or the best one, is not above it), the
    candidates become every gem whose bound reaches that level, and the ranking is exact.
    """
    sim = _exact_similarity(emb32, cand, q)
    res = sim * factor[cand]
    order = np.lexsort((cand, -res))  # resonance descending, then lattice index ascending
    cand, sim, res = cand[order], sim[order], res[order]
    k = min(p.k, int(np.count_nonzero(res >= p.min_score)))  # the eligible ones are a prefix
    if floor is not None:
        outside = floor * (1 + 2.0 ** -21) + slack
        level = float(res[k - 1]) if k == p.k else min(p.min_score, float(res[0]))
        if not (res[0] > outside and (res[k - 1] if k == p.k else p.min_score) > outside):
            # an outside gem may tie or beat: take every gem whose score could reach `level`
            thr = np.float32((level - slack) / (1 + 2.0 ** -21))
            if float(thr) > (level - slack) / (1 + 2.0 ** -21):
                thr = np.nextafter(thr, np.float32(-np.inf))
            wide = np.flatnonzero(scores >= thr)
            return _rank_candidates(emb32, factor, q, wide, scores, None, slack, lattice, p)
    return _ranking(cand[:k], sim[:k], res[:k], float(res[0]), factor.size, lattice, p)


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
        return pd.DataFrame(columns=["query", "question", *RankedGem.__dataclass_fields__])
    return pd.concat(frames, ignore_index=True)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine of a few row vectors (for near-duplicate checks), float64."""
    v = normalise_rows(np.asarray(vectors, dtype=np.float64))
    return v @ v.T
