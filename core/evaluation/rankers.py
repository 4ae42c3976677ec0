"""Rankers for the evaluation bench: this project's scoring rules and the baselines it is
measured against, each scoring a block of questions against every gem at once.

A ranker maps a :class:`Block` (B questions: similarity rows, ask times, candidate masks) to
a float32 (B, N) score matrix, higher is better; gems that are not candidates or fall below
the rule's minimum score get -inf (not retrieved). The similarity matrix is computed once per
evaluation and shared by every ranker and parameter point.

Baselines (the published rules, with their published defaults):

* ``similarity``: cosine similarity alone.
* ``bm25``: Okapi BM25 over the gems' text (``bm25s``, k1 = 1.5, b = 0.75).
* ``langchain``: LangChain's TimeWeightedVectorStoreRetriever,
  ``s + (1 - decay_rate) ** hours_since_last_access``, decay_rate = 0.01.
* ``generative-agents``: Park et al. 2023, min-max normalised recency ``0.995 ** hours``,
  importance (here the gem's energy) and relevance, weights 1.
* ``memorybank``: Zhong et al. 2024, similarity weighted by the retention
  ``exp(-days / S)``, S = 1 + number of recalls.
* ``hybrid``: this project's offline hybrid retriever alone (no decay): BM25 over stemmed
  tokens fused with the similarity, plus the dates a question names (:mod:`core.knowledge.hybrid`).
* ``lattice``: the lattice's own scoring rule (``params.scoring``: product, floor or weighted),
  coherence decayed to each question's time; with ``params.retriever == "hybrid"`` the rule
  reads the hybrid's fused score where it read the similarity.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import numpy as np

from core.engine import LatticeParams, unit_seconds
from core.errors import ValidationError
from core.evaluation.corpus import EvalCorpus
from core.knowledge import HybridIndex, fuse

NEG = np.float32(-np.inf)


@dataclass
class Block:
    """B questions ready to score: ``similarity`` (B, N) float32 cosine, ``asked_t`` (B,)
    lattice times, ``candidates`` (B, N) bool, ``texts`` the questions.

    What every point re-uses is computed once per block: ``relevance`` = max(0, s), the
    question times as ``times`` (U distinct) and ``time_index`` (B,), and ``all_candidates``.
    """

    similarity: np.ndarray
    asked_t: np.ndarray
    candidates: np.ndarray
    texts: list[str]

    def __post_init__(self) -> None:
        self.relevance = np.maximum(self.similarity, np.float32(0.0))
        self.times, self.time_index = np.unique(self.asked_t, return_inverse=True)
        self.all_candidates = bool(self.candidates.all())
        self._below: dict[float, np.ndarray] = {}

    def similarity_below(self, minimum: float) -> np.ndarray:
        """(B, N) mask of relevance < ``minimum`` (cached per minimum: many points share one)."""
        key = float(minimum)
        if key not in self._below:
            self._below[key] = self.relevance < np.float32(key)
        return self._below[key]

    def times_rows(self, rows: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """``matrix * rows[time of each question]`` as a new (B, N) float32 array: ``rows`` has one
        row per distinct question time; questions sharing a time are multiplied by one broadcast
        row, without gathering a (B, N) copy of ``rows``."""
        out = np.empty_like(matrix, dtype=np.float32)
        if len(self.times) == 1:
            return np.multiply(matrix, rows[0], out=out)
        for u in range(len(self.times)):
            members = np.flatnonzero(self.time_index == u)
            lo, hi = members[0], members[-1] + 1
            if hi - lo == members.size:  # contiguous (evaluate sorts questions by time)
                np.multiply(matrix[lo:hi], rows[u], out=out[lo:hi])
            else:
                out[members] = matrix[members] * rows[u]
        return out


Ranker = Callable[[EvalCorpus, Block, LatticeParams], np.ndarray]


def coherence_at(corpus: EvalCorpus, times: np.ndarray, params: LatticeParams) -> np.ndarray:
    """(U, N) float32 coherence of every gem at each of ``times`` (lattice time) under
    ``params``' decay scale, from each gem's last event:
    ``c_event exp(-lambda_ (T - t_event) / E)`` (see :meth:`EvalCorpus.last_event`)."""
    lat = corpus.lattice
    event_t, event_c = corpus.last_event()
    rate = (-params.lambda_ / lat.energy).astype(np.float32)  # per gem, 1/time unit
    dt = np.subtract.outer(np.asarray(times, dtype=np.float64), event_t).astype(np.float32)
    np.maximum(dt, 0.0, out=dt)  # a time before a gem's creation: it is not a candidate anyway
    dt *= rate
    np.exp(dt, out=dt)
    dt *= event_c.astype(np.float32)
    return dt


def _hours_since_access(corpus: EvalCorpus, asked_t: np.ndarray) -> np.ndarray:
    hours_per_unit = unit_seconds(corpus.params.time_unit) / 3600.0
    since = np.subtract.outer(asked_t, corpus.last_access_t).astype(np.float32)
    np.maximum(since, 0.0, out=since)
    since *= np.float32(hours_per_unit)
    return since


def _min_max(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Row-wise min-max normalisation over the candidates (constant rows -> 1)."""
    lo = (x if mask is None else np.where(mask, x, np.inf)).min(axis=1, keepdims=True)
    hi = (x if mask is None else np.where(mask, x, -np.inf)).max(axis=1, keepdims=True)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1), 1.0)
    return out.astype(np.float32)


def _finish(scores: np.ndarray, block: Block, drop: np.ndarray | None = None) -> np.ndarray:
    """``scores`` (float32, owned) with non-candidates and ``drop``ped gems set to -inf."""
    if drop is not None:
        np.putmask(scores, drop, NEG)
    if not block.all_candidates:
        np.putmask(scores, ~block.candidates, NEG)
    return scores


def similarity_ranker(corpus: EvalCorpus, block: Block, params: LatticeParams) -> np.ndarray:
    return _finish(block.similarity.copy(), block)


def lattice_ranker(corpus: EvalCorpus, block: Block, params: LatticeParams) -> np.ndarray:
    """The lattice's scoring rule at each question's time (``params.scoring``), min_score applied
    as its help says: to the resonance under product, to the similarity otherwise."""
    c = coherence_at(corpus, block.times, params)  # (U, N): one row per distinct question time
    if params.alpha != 1.0:
        np.power(c, np.float32(params.alpha), out=c)
    if params.scoring == "product":
        r = block.times_rows(c, block.relevance)
        return _finish(r, block, r < np.float32(params.min_score))
    if params.scoring == "floor":
        phi = np.float32(params.coherence_floor)
        c *= 1 - phi
        c += phi
        r = block.times_rows(c, block.relevance)
        return _finish(r, block, block.similarity_below(params.min_score))
    weights = np.array([params.w_relevance, params.w_recency, params.w_importance], dtype=np.float32)
    if weights.sum() <= 0:
        raise ValidationError("w_relevance", "the weighted rule needs at least one weight above 0")
    mask = None if block.all_candidates else block.candidates
    energy = np.broadcast_to(corpus.lattice.energy.astype(np.float32), block.similarity.shape)
    r = (weights[0] * _min_max(block.relevance, mask) + weights[1] * block.times_rows(c, np.ones_like(block.relevance))
         + weights[2] * _min_max(energy, mask)) / weights.sum()
    return _finish(r.astype(np.float32), block, block.similarity_below(params.min_score))


def langchain_ranker(corpus: EvalCorpus, block: Block, params: LatticeParams, decay_rate: float = 0.01) -> np.ndarray:
    """``s + (1 - decay_rate) ** hours since last access`` (LangChain's default decay_rate 0.01/hour)."""
    hours = _hours_since_access(corpus, block.asked_t)
    recency = np.power(np.float32(1 - decay_rate), hours)
    recency += block.similarity
    return _finish(recency, block)


def generative_agents_ranker(corpus: EvalCorpus, block: Block, params: LatticeParams,
                             decay: float = 0.995) -> np.ndarray:
    """Recency ``0.995 ** hours``, importance (energy) and relevance, each min-max normalised, weights 1."""
    hours = _hours_since_access(corpus, block.asked_t)
    recency = np.power(np.float32(decay), hours)
    energy = np.broadcast_to(corpus.lattice.energy.astype(np.float32), hours.shape)
    m = None if block.all_candidates else block.candidates
    return _finish(_min_max(recency, m) + _min_max(energy, m) + _min_max(block.similarity, m), block)


def memorybank_ranker(corpus: EvalCorpus, block: Block, params: LatticeParams) -> np.ndarray:
    """Similarity times the Ebbinghaus retention ``exp(-days since last recall / S)``, S = 1 + recalls."""
    days = _hours_since_access(corpus, block.asked_t) / np.float32(24.0)
    strength = (1.0 + corpus.observations).astype(np.float32)
    retention = np.exp(-days / strength)
    retention *= block.relevance
    return _finish(retention, block)


class BM25Ranker:
    """Okapi BM25 over the gems' text (``bm25s``), indexed once per corpus."""

    def __init__(self, corpus: EvalCorpus):
        import bm25s  # a maintained BM25; imported when a BM25 ranking is asked for
        self._bm25s = bm25s
        self._retriever = bm25s.BM25(k1=1.5, b=0.75)
        self._retriever.index(bm25s.tokenize(corpus.texts, stopwords="en", show_progress=False), show_progress=False)
        self._n = len(corpus)

    def __call__(self, corpus: EvalCorpus, block: Block, params: LatticeParams) -> np.ndarray:
        scores = np.zeros((len(block.texts), self._n), dtype=np.float32)
        tokens = self._bm25s.tokenize(block.texts, stopwords="en", show_progress=False, return_ids=False)
        for row, words in enumerate(tokens):
            if words:
                scores[row] = self._retriever.get_scores(words)
        return _finish(scores, block)


def created_at(corpus: EvalCorpus) -> list[datetime | None]:
    """Each gem's creation instant from its lattice time and the lattice's epoch (None when
    either is unknown)."""
    if corpus.epoch is None:
        return [None] * len(corpus)
    unit = unit_seconds(corpus.params.time_unit)
    return [None if np.isnan(t) else corpus.epoch + timedelta(seconds=float(t) * unit) for t in corpus.created_t]


class HybridScores:
    """The hybrid's fused score (:func:`core.knowledge.fuse`) of a block's questions, with the
    corpus's BM25 index and gem days built once per corpus (the first time it is asked for)."""

    def __init__(self):
        self._index: HybridIndex | None = None

    def block(self, corpus: EvalCorpus, block: Block) -> Block:
        """``block`` with the fused score in place of its similarity (same times and candidates)."""
        if self._index is None or len(self._index) != len(corpus):
            self._index = HybridIndex(corpus.texts, created_at(corpus))
        lexical, dates = self._index.terms(block.texts)
        fused = fuse(block.relevance, lexical, dates).astype(np.float32)
        return Block(fused, block.asked_t, block.candidates, block.texts)


class HybridRanker:
    """The hybrid retriever's fused score alone (no decay), as a baseline."""

    def __init__(self):
        self._scores = HybridScores()

    def __call__(self, corpus: EvalCorpus, block: Block, params: LatticeParams) -> np.ndarray:
        return _finish(self._scores.block(corpus, block).similarity.copy(), block)


class LatticeRanker:
    """:func:`lattice_ranker`, on the hybrid's fused score when ``params.retriever`` is hybrid."""

    def __init__(self):
        self._scores = HybridScores()

    def __call__(self, corpus: EvalCorpus, block: Block, params: LatticeParams) -> np.ndarray:
        if params.retriever == "hybrid":
            block = self._scores.block(corpus, block)
        return lattice_ranker(corpus, block, params)


BASELINES = ("similarity", "bm25", "hybrid", "langchain", "generative-agents", "memorybank")
RANKERS = ("lattice",) + BASELINES


def make_ranker(name: str, corpus: EvalCorpus) -> Ranker:
    """The ranker called ``name`` (one of :data:`RANKERS`) for ``corpus``."""
    if name == "lattice":
        return LatticeRanker()
    if name == "hybrid":
        return HybridRanker()
    simple = {"similarity": similarity_ranker, "langchain": langchain_ranker,
              "generative-agents": generative_agents_ranker, "memorybank": memorybank_ranker}
    if name in simple:
        return simple[name]
    if name == "bm25":
        return BM25Ranker(corpus)
    raise ValidationError("ranker", f"got {name!r}; allowed: {', '.join(RANKERS)}")
