"""Resonance ranking: which gems answer a query, with every term of the score.

Resonance (docs/architecture.md) of a query q with gem i::

    s_i = max(0, cos_sim(q, g_i))          similarity, in [0, 1]
    r_i = s_i * c_i ** alpha               resonance (coherence-weighted similarity)

The top-k gems by ``r_i`` are found with one matrix-vector product and
``argpartition`` (O(N), no full sort); gems with ``r_i < params.min_score`` are never
returned. With ``beta != 0`` the k chosen gems are re-ranked greedily by
``r_i + beta * sum_{j already chosen} I_ij / k`` with the interference
``I_ij = cos(phi_i - phi_j) c_i c_j`` computed from the rank-2 phasor identity on the
k candidates only (never an N x N matrix). Every term is returned, per gem.

Embeddings are float32 (half the memory of float64, ample for cosine similarity);
scores are computed and returned in float64.
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
    coh = np.asarray(lattice.coherence, dtype=np.float64)
    unc = np.asarray(lattice.uncertainty, dtype=np.float64)
    r = res[cand]
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
        cand, r = cand[order], r[order]
    factor = np.power(coh[cand], p.alpha)
    gems = tuple(
        RankedGem(rank=pos + 1, index=int(i), gem_id=lattice.ids[int(i)], similarity=float(sim[i]),
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
                    params: LatticeParams | None = None) -> list[Ranking]:
    """Rank the gems for Q queries at once (sweeps, evaluations).

    One (Q, d) @ (d, N) product for all similarities; the per-query top-k selection
    is an O(N) argpartition each. Results equal ``[resonance(q, ...) for q in queries]`` up to
    float32 rounding of the similarities (BLAS may sum a matrix product in another order).
    """
    p = params or lattice.params
    sims, res = resonance_matrix(queries, embeddings, lattice, p)
    return [_rank_one(sims[i], res[i], lattice, p) for i in range(res.shape[0])]


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
