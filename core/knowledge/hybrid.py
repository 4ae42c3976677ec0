"""The hybrid retriever: BM25 fused with the embedder's similarity (and the dates a question
names), in place of the similarity term of the lattice's scoring rule.

For question q and gem i (every term dimensionless, in [0, 1])::

    s_i      = max(0, cos_sim(q, g_i))                   the embedder's similarity
    bm25_i   = BM25(q, i) / U(q)                         :mod:`core.knowledge.lexical`
    base_i   = (1 - W_LEXICAL) s_i + W_LEXICAL bm25_i     a weighted sum
    date_i   = 1 if gem i was created on a day q names    :mod:`core.knowledge.dates`
    fused_i  = (1 - W_DATE) base_i + W_DATE date_i        when q names a date; else base_i

and the lattice's scoring rule (product, floor, weighted; :mod:`core.knowledge.scoring`) then
reads ``fused_i`` where it read ``s_i``: decay still reorders (floor: ``fused (phi + (1 - phi)
c^alpha)``), min_score applies where it applied, and the ranking shows every term
(``similarity`` s, ``bm25``, ``date_match``, ``fused``, and the rule's decay terms).

Weights: chosen by 5-fold cross-validation over the 100 questions of the shipped MemoryBank
set (``python -m benchmarks.hybrid_cv``, hashing-v2): four folds of five picked W_LEXICAL = 0.3
(one 0.15), and every W_DATE from 0.1 to 0.5 ranked alike (a date-named gem then tops any
other); held-out recall@10 0.949, in-sample 0.959 (the README has the table). A weighted sum of
bounded scores rather than reciprocal-rank fusion: RRF (k = 5 to 60) reached 0.885 against
0.89 for the sum, and ranks, unlike scores, depend on which gems are candidates.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Callable, Sequence

import numpy as np

from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.errors import LatticeError
from core.knowledge.dates import DayIndex, gem_days
from core.knowledge.lexical import LexicalIndex
from core.knowledge.registry import DEFAULT_EMBEDDER
from core.knowledge.resonance import Ranking, rank_similarities, resonance, similarities

W_LEXICAL = 0.3
"""Weight of the normalised BM25 score against the embedder's similarity."""
W_DATE = 0.3
"""Weight of the date term when the question names a date."""
HYBRID_EMBEDDER = "hashing-v2"
"""The embedder the weights were tuned with: new ``memory`` lattices (retriever hybrid) default to it."""


def default_embedder(preset: str | None) -> str:
    """The embedder of a new lattice whose parameters come from ``preset`` when none is given:
    ``hashing-v2`` for ``memory`` (the hybrid's recall@10 on the shipped set: 0.959 with it,
    0.916 with hashing-v1), ``hashing-v1`` (``DEFAULT_EMBEDDER``) otherwise."""
    return HYBRID_EMBEDDER if preset == "memory" else DEFAULT_EMBEDDER


def gem_text(title: object, content: object) -> str:
    """What BM25 indexes of a gem: its title and content (None and NaN read as ""). The
    evaluation corpus (core.evaluation.corpus) builds its texts the same way, so the bench and
    the live paths score the same tokens."""
    def part(v: object) -> str:
        return "" if v is None or (isinstance(v, float) and v != v) else str(v)
    return part(title) + "\n" + part(content)


def fuse(similarity: np.ndarray, lexical: np.ndarray, dates: np.ndarray | None = None,
         w_lexical: float = W_LEXICAL, w_date: float = W_DATE) -> np.ndarray:
    """The fused score of (Q, N) ``similarity`` (>= 0), ``lexical`` (normalised BM25) and
    ``dates`` (the date term; None: no date), float64 in [0, 1]. A question (row) that names
    no date (a row of ``dates`` all 0) keeps the weighted sum of the first two."""
    if not 0 <= w_lexical <= 1 or not 0 <= w_date <= 1:
        raise LatticeError(f"hybrid weights must be in [0, 1], got w_lexical={w_lexical}, w_date={w_date}")
    s = np.clip(np.asarray(similarity, dtype=np.float64), 0.0, 1.0)
    out = (1.0 - w_lexical) * s + w_lexical * np.asarray(lexical, dtype=np.float64)
    if dates is not None:
        d = np.asarray(dates, dtype=np.float64)
        named = d.any(axis=-1, keepdims=True)
        out = np.where(named, (1.0 - w_date) * out + w_date * d, out)
    return out


class HybridIndex:
    """What the hybrid needs of a lattice's gems besides their embeddings: the BM25 index of
    their texts and the UTC day each was created on (built once per lattice version).

    Parameters
    ----------
    texts : sequence of str
        The gems' texts in lattice order.
    created : sequence of datetime or None, optional
        When each gem was created (None or omitted: no date term for that gem).
    """

    def __init__(self, texts: Sequence[str], created: Sequence[datetime | None] | None = None):
        self.lexical = LexicalIndex(texts)
        if created is not None and len(created) != len(texts):
            raise LatticeError(f"{len(created)} creation times for {len(texts)} texts")
        self.days: list[date | None] = gem_days(created) if created is not None else [None] * len(texts)
        self._day_index = DayIndex(self.days)

    def __len__(self) -> int:
        return len(self.lexical)

    @property
    def nbytes(self) -> int:
        """Approximate memory in bytes: the BM25 index and about 72 bytes a gem for its day."""
        return self.lexical.nbytes + 72 * len(self.days)

    def terms(self, questions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(Q, N) normalised BM25 and (Q, N) date term of ``questions``."""
        return self.lexical.scores(questions), self._day_index.match(questions)


@dataclass(frozen=True)
class HybridTerms:
    """One question's hybrid terms over all N gems (float64 arrays, shape (N,))."""

    similarity: np.ndarray
    bm25: np.ndarray
    date_match: np.ndarray
    fused: np.ndarray


def hybrid_terms(query: np.ndarray, question: str, embeddings: np.ndarray, lattice: Lattice,
                 index: HybridIndex) -> HybridTerms:
    """Every hybrid term of one question (its embedding ``query`` and its text)."""
    if len(index) != len(lattice):
        raise LatticeError(f"the hybrid index has {len(index)} gems but the lattice {len(lattice)}; rebuild it")
    sim = similarities(query, embeddings, lattice)[0]
    lex, dates = index.terms([question])
    return HybridTerms(sim, lex[0], dates[0], fuse(sim[None, :], lex, dates)[0])


def hybrid_resonance(query: np.ndarray, question: str, embeddings: np.ndarray, lattice: Lattice,
                     index: HybridIndex, params: LatticeParams | None = None) -> Ranking:
    """:func:`core.knowledge.resonance` with the fused score in place of the similarity.

    The lattice's rule ranks ``fused`` (min_score, the most similar gem kept and the beta
    re-ranking all read it); each ranked gem then shows ``similarity`` (the embedder's cosine),
    ``bm25``, ``date_match`` and ``fused`` beside the rule's terms."""
    t = hybrid_terms(query, question, embeddings, lattice, index)
    ranking = rank_similarities(t.fused, lattice, params)
    gems = tuple(replace(g, similarity=float(t.similarity[g.index]), bm25=float(t.bm25[g.index]),
                         date_match=float(t.date_match[g.index]), fused=g.similarity) for g in ranking.gems)
    return replace(ranking, gems=gems, retriever="hybrid")


IndexSource = HybridIndex | Callable[[], HybridIndex] | None
"""A hybrid index, or a function building (or fetching) it when first needed."""


def rank_question(query: np.ndarray, question: str, embeddings: np.ndarray, lattice: Lattice,
                  params: LatticeParams | None = None, index: IndexSource = None) -> Ranking:
    """The ranking of one question as every live path ranks it (search, a reflection): under
    ``params.retriever == "hybrid"`` :func:`hybrid_resonance` with ``index`` (a callable is
    called only then), else :func:`core.knowledge.resonance` (``index`` unused).

    Under the hybrid the lattice's rule reads the fused score everywhere it read the similarity:
    min_score, and under floor and weighted the gem kept in the last slot is the best *fused* one
    (ties to the lowest lattice index); the evaluation bench keeps the same gem."""
    p = params or lattice.params
    if p.retriever != "hybrid":
        return resonance(query, embeddings, lattice, p)
    built = index() if callable(index) else index
    if built is None:
        raise LatticeError("this lattice ranks with the hybrid retriever but no hybrid index was given; "
                           "build one with HybridIndex(texts, created)")
    return hybrid_resonance(query, question, embeddings, lattice, built, p)
