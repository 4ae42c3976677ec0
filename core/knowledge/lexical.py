"""Okapi BM25 over the gems' text, as one sparse matrix, for the hybrid retriever.

Tokens: lower-case words (the hashing embedders' word split), English stop words dropped,
then a light suffix stemmer (``movies``/``movie``, ``recommended``/``recommend``,
``painting``/``paint``): on the shipped MemoryBank set it lifts BM25's recall@10 from 0.843
to 0.863 (k1 = 1.2, b = 0.75; k1 and b changed it by < 0.005). Each gem i and term t::

    bm25(q, i) = sum_{t in q} idf_t * tf_ti (k1 + 1) / (tf_ti + k1 (1 - b + b len_i / avg_len))
    idf_t = ln(1 + (N - df_t + 0.5) / (df_t + 0.5))

and the score the hybrid fuses is ``bm25(q, i) / U(q)``, in [0, 1], with
``U(q) = (k1 + 1) sum_{t in q} idf_t`` the most any gem can score (each term's tf part tends
to k1 + 1): a bound of the query alone, so the normalised score does not change with which
gems are candidates (a scope, the gems that existed when a question was asked), unlike a
max or min-max normalisation over the results.

The index is the matrix of the tf parts, stored term by term ((V, N), float64, scipy CSR):
Q queries score with one sparse (Q, V) @ (V, N) product that reads only the rows of their
terms, so a query's cost grows with the gems sharing one of its terms, not with N (the result
row is then made dense, O(N) memory writes). IDF is the corpus's (the lattice's
gems), rebuilt when the gems change; the embedders' static IDF is
:mod:`core.knowledge.word_frequency`.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from core.errors import LatticeError
from core.knowledge.hashing import _words

K1, B = 1.2, 0.75
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with".split())
"""The 33 English stop words of Lucene's classic analyser (bm25s's ``stopwords="en"``)."""

_SUFFIXES = (("sses", "ss"), ("ies", "i"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""))


def stem(word: str) -> str:
    """A light suffix stemmer: the first matching suffix of ``_SUFFIXES`` is replaced when at
    least 3 letters remain (``"ss"`` endings keep their s: ``class``), then a final ``e`` is
    dropped and a final ``y`` becomes ``i`` (``movie``/``movies`` -> ``movi``, ``story``/
    ``stories`` -> ``stori``, ``like``/``liked`` -> ``lik``)."""
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                break
            word = word[: -len(suffix)] + repl
            break
    if len(word) > 3 and word[-1] in "ey":
        word = word[:-1] + ("i" if word[-1] == "y" else "")
    return word


def tokens(text: str) -> list[str]:
    """The BM25 terms of ``text``: lower-case words, stop words dropped, stemmed."""
    return [stem(w) for w in (x.lower() for x in _words(text)) if w not in STOP_WORDS]


class LexicalIndex:
    """BM25 over a fixed list of texts (a lattice's gems, in lattice order).

    Parameters
    ----------
    texts : sequence of str
        The gems' texts (title and content).
    k1, b : float
        BM25's term-frequency saturation (k1 > 0) and length normalisation (0 <= b <= 1).
    """

    def __init__(self, texts: Sequence[str], k1: float = K1, b: float = B):
        if not k1 > 0 or not 0 <= b <= 1:
            raise LatticeError(f"BM25 needs k1 > 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b = float(k1), float(b)
        self.vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        lengths = np.zeros(len(texts))
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise LatticeError(f"text {i} is {type(text).__name__}, expected a string")
            terms = tokens(text)
            lengths[i] = len(terms)
            for t in terms:
                rows.append(i)
                cols.append(self.vocab.setdefault(t, len(self.vocab)))
        n, v = len(texts), len(self.vocab)
        tf = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, v)).tocsr()
        tf.sum_duplicates()
        df = np.bincount(tf.indices, minlength=v)
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5))
        avg = float(lengths.mean()) if n and lengths.sum() > 0 else 1.0
        tf = tf.tocoo()
        part = tf.data * (self.k1 + 1) / (tf.data + self.k1 * (1 - self.b + self.b * lengths[tf.row] / avg))
        # (V, N) tf parts, row t = the gems holding term t: a query reads only its terms' rows
        self._by_term = sp.csr_matrix((part, (tf.col, tf.row)), shape=(v, n))
        self.n = n

    def __len__(self) -> int:
        return self.n

    @property
    def nbytes(self) -> int:
        """Approximate memory in bytes: the sparse matrix, the IDF and the vocabulary (about
        100 bytes a term for its key and dict slot)."""
        w = self._by_term
        return int(w.data.nbytes + w.indices.nbytes + w.indptr.nbytes + self.idf.nbytes + 100 * len(self.vocab))

    def query_matrix(self, queries: Sequence[str]) -> sp.csr_matrix:
        """(Q, V) sparse: idf_t per occurrence of a known term t in each query."""
        rows: list[int] = []
        cols: list[int] = []
        for r, q in enumerate(queries):
            for t in tokens(q):
                c = self.vocab.get(t)
                if c is not None:
                    rows.append(r)
                    cols.append(c)
        m = sp.coo_matrix((self.idf[cols] if cols else np.zeros(0), (rows, cols)),
                          shape=(len(queries), len(self.vocab))).tocsr()
        m.sum_duplicates()
        return m

    def raw_scores(self, queries: Sequence[str]) -> np.ndarray:
        """(Q, N) float64 BM25 scores, unnormalised."""
        return (self.query_matrix(queries) @ self._by_term).toarray().astype(np.float64, copy=False)

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """(Q, N) float64 BM25 scores divided by each query's bound U(q): in [0, 1]; a query
        without any indexed term scores 0 everywhere."""
        qm = self.query_matrix(queries)
        raw = (qm @ self._by_term).toarray().astype(np.float64, copy=False)
        bound = np.asarray(qm.sum(axis=1)).ravel() * (self.k1 + 1)
        return np.divide(raw, bound[:, None], out=np.zeros_like(raw), where=bound[:, None] > 0)
