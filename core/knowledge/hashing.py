"""The default embedder, ``hashing-v1``: deterministic, offline and dependency-free.

Feature hashing of words, word bigrams and character trigrams (signed, so collisions
cancel on average), sublinear term frequency, L2 normalisation.
"""
from __future__ import annotations

import re
import threading
import zlib
from typing import Sequence

import numpy as np

from core.errors import LatticeError

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# For ASCII text the same words, twice as fast: every ASCII character that is not a letter
# or digit becomes a space, then split (tests compare both ways on random text).
_ASCII_NON_ALNUM = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})


def _words(text: str) -> list[str]:
    return text.translate(_ASCII_NON_ALNUM).split() if text.isascii() else _WORD.findall(text)


class HashingEmbedder:
    """Deterministic offline embedder: signed feature hashing of n-grams.

    Features of a text: each lower-cased word (weight 1), its character trigrams with
    ``<``/``>`` boundary marks (0.25 each) and each word bigram (0.5); a feature goes to
    column ``crc32(feature) % dim`` with sign ``+`` when bit 31 of the hash is set.
    Per column the signed weights are summed, then ``sign(v) * log1p(|v|)``, then L2.

    Speed: each distinct word gets an id and its features are hashed once (kept as
    flat arrays indexed by id), each distinct bigram once; a batch is then array work:
    gather the features of its words and bigrams and add them up with one ``np.add.at``
    into reused buffers. The weights are multiples of 1/4, so the sums are exact in any
    order: the result is bit for bit what the plain per-feature loop gives
    (``benchmarks.knowledge.hashing_v1_reference``, the tests' specification). On text
    whose words and bigrams repeat the gain is large (7-8x on the store benchmark's
    gems); on fresh real text it is ~2.5x, as most bigrams are new.
    """

    _MEMO_LIMIT = 1_000_000  # distinct words + bigrams remembered; forgotten all at once beyond
    _CHUNK = 256  # texts per pass (bounds the dense work buffers)

    def __init__(self, dim: int = 1024):
        if dim < 16:
            raise LatticeError(f"hashing embedder dimension must be >= 16, got {dim}")
        self.dim = int(dim)
        self.name = "hashing-v1" if self.dim == 1024 else f"hashing-v1-{self.dim}"
        self._lock = threading.Lock()  # memo and buffers are shared by the threads of a process
        self._sums, self._tf, self._square = (np.zeros(self._CHUNK * self.dim) for _ in range(3))
        self._forget()

    def _forget(self) -> None:
        self._id_of_raw: dict[str, int] = {}  # word as written -> id of its lower-case form
        self._id_of_word: dict[str, int] = {}  # lower-case word -> id
        self._words: list[str] = []  # id -> lower-case word
        self._feat_start = np.zeros(1, dtype=np.int64)  # id -> its features in _feat_col/_feat_q
        self._feat_col = np.zeros(0, dtype=np.int64)
        self._feat_q = np.zeros(0, dtype=np.int64)  # signed weight in quarters
        self._bigram: dict[int, int] = {}  # id_a << 32 | id_b -> column << 8 | (quarters + 8)

    def _hash(self, feature: str, quarters: int) -> tuple[int, int]:
        """(column, signed weight in quarters) of one feature."""
        h = zlib.crc32(feature.encode("utf-8"))
        return h % self.dim, quarters if (h >> 31) & 1 else -quarters

    def _word_ids(self, raw: list[str]) -> np.ndarray:
        """Ids of the words ``raw`` (as written), hashing the features of new ones."""
        get = self._id_of_raw.get
        ids = [get(w, -1) for w in raw]
        if -1 in ids:
            new_cols: list[int] = []
            new_q: list[int] = []
            ends: list[int] = []
            for k, w in enumerate(raw):
                if ids[k] >= 0:
                    continue
                low = w.lower()
                wid = self._id_of_word.get(low)
                if wid is None:
                    wid = self._id_of_word[low] = len(self._words)
                    self._words.append(low)
                    padded = f"<{low}>"
                    for col, q in [self._hash("w:" + low, 4)] + [self._hash("c:" + padded[i:i + 3], 1)
                                                                  for i in range(len(padded) - 2)]:
                        new_cols.append(col)
                        new_q.append(q)
                    ends.append(len(new_cols))
                ids[k] = self._id_of_raw[w] = wid
            self._feat_start = np.concatenate([self._feat_start, self._feat_start[-1] + np.asarray(ends, np.int64)])
            self._feat_col = np.concatenate([self._feat_col, np.asarray(new_cols, np.int64)])
            self._feat_q = np.concatenate([self._feat_q, np.asarray(new_q, np.int64)])
        return np.asarray(ids, dtype=np.int64)

    def _bigram_features(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(column, quarters) of each bigram code ``id_a << 32 | id_b``."""
        get = self._bigram.get
        codes_list = codes.tolist()
        packed = [get(c, -1) for c in codes_list]
        if -1 in packed:
            for k, c in enumerate(codes_list):
                if packed[k] < 0:
                    col, q = self._hash("b:" + self._words[c >> 32] + " " + self._words[c & 0xFFFFFFFF], 2)
                    packed[k] = self._bigram[c] = col << 8 | (q + 8)
        packed_arr = np.asarray(packed, dtype=np.int64)
        return packed_arr >> 8, (packed_arr & 0xFF) - 8

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise LatticeError(f"text {row} is {type(text).__name__}, expected a string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for start in range(0, len(texts), self._CHUNK):
                self._embed_chunk(texts[start:start + self._CHUNK], out[start:start + self._CHUNK].reshape(-1))
        return out

    def _embed_chunk(self, texts: Sequence[str], out: np.ndarray) -> None:
        """Embed up to _CHUNK texts into the flat float32 view ``out`` (zeros on entry)."""
        raw: list[str] = []
        counts = np.zeros(len(texts), dtype=np.int64)  # words per text
        for row, text in enumerate(texts):
            words = _words(text)
            raw.extend(words)
            counts[row] = len(words)
        if len(self._words) + len(self._bigram) > self._MEMO_LIMIT:
            self._forget()
        ids = self._word_ids(raw)
        text_of = np.repeat(np.arange(len(texts)), counts)  # text of each word
        pair = text_of[:-1] == text_of[1:]  # consecutive words of the same text
        b_cols, b_q = self._bigram_features(ids[:-1][pair] << 32 | ids[1:][pair])
        starts, lens = self._feat_start[ids], self._feat_start[ids + 1] - self._feat_start[ids]
        at = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))  # features of each word
        rows = np.concatenate([np.repeat(text_of, lens), text_of[:-1][pair]])
        cells = rows * self.dim + np.concatenate([self._feat_col[at], b_cols])  # with repeats
        # Work in buffers that are all zero between calls: fresh 2 MB arrays per chunk cost
        # more in page faults than the arithmetic. Sums are exact (quarters) in any order.
        size = len(texts) * self.dim
        sums, tf, square = self._sums[:size], self._tf[:size], self._square[:size]
        np.add.at(sums, cells, np.concatenate([self._feat_q[at], b_q]) / 4.0)
        v = sums[cells]
        tf[cells] = np.sign(v) * np.log1p(np.abs(v))  # sublinear tf; a repeated cell gets the same value
        # the norm over dense rows, exactly as normalise_rows takes it (same bits)
        np.multiply(tf, tf, out=square)
        norms = np.sqrt(np.add.reduce(square.reshape(len(texts), self.dim), axis=1))
        out[cells] = tf[cells] / np.where(norms > 0, norms, 1.0)[cells // self.dim]
        sums[cells] = 0.0
        tf[cells] = 0.0
