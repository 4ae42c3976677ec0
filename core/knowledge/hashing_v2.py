"""``hashing-v2``: the hashing embedder with static IDF weights, so common words stop counting.

``hashing-v1`` gives every word weight 1: "what", "did", "you" and "me" weigh as much as
"Xiamen" or "violin", so a question full of common words matches any gem full of them (BM25,
whose IDF gives such words ~0, beat it by 12 points of recall@10 on the shipped MemoryBank
set). Here each word's features are scaled by a corpus-independent IDF read from a fixed
English frequency table (:mod:`core.knowledge.word_frequency`)::

    idf(w) = max(IDF_FLOOR, (ZIPF_ZERO - zipf(w)) / (ZIPF_ZERO - UNLISTED_ZIPF))

so a word as common as ZIPF_ZERO (7.0: "you", "the", "is") or more keeps only IDF_FLOOR, a
word rarer than the table (a name, a number) gets 1, and the rest lies in between ("movie"
0.40, "violin" 0.78). Features of a text as in hashing-v1, each times that weight: the word
(``idf``), its character trigrams with ``<``/``>`` marks (``idf / 4`` each) and each word
bigram (``sqrt(idf_a idf_b) / 2``), signed feature hashing (crc32, another prefix than v1, so
the two are never mixed up), ``sign(v) log1p(|v|)`` per column, then L2.

Deterministic per text: the table is shipped, so an embedding never changes when other gems
are added. A new name so that lattices embedded with hashing-v1 stay valid (re-embed with
``python -m core reembed LATTICE hashing-v2`` to switch).
"""
from __future__ import annotations

import math
import threading
import zlib
from typing import Sequence

import numpy as np

from core.errors import LatticeError
from core.knowledge.hashing import _words
from core.knowledge.word_frequency import UNLISTED_ZIPF, zipf

ZIPF_ZERO = 7.0
"""Zipf frequency at and above which a word keeps only IDF_FLOOR (about 10 per million words)."""
IDF_FLOOR = 0.05
"""What the commonest words keep: a text made only of them still has a direction."""


def idf(word: str) -> float:
    """Static IDF of lower-case ``word``, in [IDF_FLOOR, 1] (dimensionless)."""
    return max(IDF_FLOOR, (ZIPF_ZERO - zipf(word)) / (ZIPF_ZERO - UNLISTED_ZIPF))


class HashingEmbedderV2:
    """Deterministic offline embedder: IDF-weighted signed feature hashing of n-grams.

    Speed: each distinct word's features (columns and weights) are hashed once and kept;
    a text is then one ``np.add.at`` of its words' and bigrams' features into a row.
    """

    _MEMO_LIMIT = 500_000  # distinct words + bigrams remembered; forgotten all at once beyond

    def __init__(self, dim: int = 1024):
        if dim < 16:
            raise LatticeError(f"hashing embedder dimension must be >= 16, got {dim}")
        self.dim = int(dim)
        self.name = "hashing-v2" if self.dim == 1024 else f"hashing-v2-{self.dim}"
        self._lock = threading.Lock()
        self._word: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}  # word -> (cols, weights, idf)
        self._bigram: dict[tuple[str, str], tuple[int, float]] = {}

    def _hash(self, feature: str) -> tuple[int, float]:
        """(column, sign) of one feature."""
        h = zlib.crc32(("v2" + feature).encode("utf-8"))
        return h % self.dim, 1.0 if (h >> 31) & 1 else -1.0

    def _word_features(self, low: str) -> tuple[np.ndarray, np.ndarray, float]:
        got = self._word.get(low)
        if got is None:
            w = idf(low)
            padded = f"<{low}>"
            feats = [(self._hash("w:" + low), w)] + [(self._hash("c:" + padded[i:i + 3]), w / 4)
                                                       for i in range(len(padded) - 2)]
            cols = np.array([c for (c, _), _ in feats], dtype=np.int64)
            vals = np.array([s * v for (_, s), v in feats], dtype=np.float64)
            got = self._word[low] = (cols, vals, w)
        return got

    def _bigram_feature(self, a: str, b: str, wa: float, wb: float) -> tuple[int, float]:
        got = self._bigram.get((a, b))
        if got is None:
            col, sign = self._hash("b:" + a + " " + b)
            got = self._bigram[(a, b)] = (col, sign * math.sqrt(wa * wb) / 2)
        return got

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise LatticeError(f"text {row} is {type(text).__name__}, expected a string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            if len(self._word) + len(self._bigram) > self._MEMO_LIMIT:
                self._word.clear()
                self._bigram.clear()
            for row, text in enumerate(texts):
                out[row] = self._embed_one(text)
        return out

    def _embed_one(self, text: str) -> np.ndarray:
        words = [w.lower() for w in _words(text)]
        v = np.zeros(self.dim)
        if not words:
            return v
        feats = [self._word_features(w) for w in words]
        cols = [f[0] for f in feats]
        vals = [f[1] for f in feats]
        if len(words) > 1:
            bi = [self._bigram_feature(a, b, fa[2], fb[2])
                  for a, b, fa, fb in zip(words, words[1:], feats, feats[1:])]
            cols.append(np.array([c for c, _ in bi], dtype=np.int64))
            vals.append(np.array([x for _, x in bi]))
        np.add.at(v, np.concatenate(cols), np.concatenate(vals))
        v = np.sign(v) * np.log1p(np.abs(v))  # sublinear tf, as hashing-v1
        norm = float(np.sqrt(v @ v))
        return v / norm if norm > 0 else v
