"""Embedders behind one small interface (the Knowledge Processor's first half).

An embedder has a ``name`` and a ``dim`` and turns texts into L2-normalised float32
rows (float32 halves storage and is ample for cosine similarity). A lattice records
the name and dimension of the embedder that built it; mixing embedders is an error.

The default, ``hashing-v1``, is deterministic, offline and dependency-free: feature
hashing of words, word bigrams and character trigrams (signed, so collisions cancel
on average), sublinear term frequency, L2 normalisation.
"""
from __future__ import annotations

import re
import zlib
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from .errors import LatticeError

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array (len(texts), dim), float32, rows L2-normalised (zero rows stay 0)."""
        ...


def embed_in_batches(embedder: Embedder, texts: Sequence[str], batch_size: int = 256,
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Embed ``texts`` in batches, calling ``progress(done, total)`` after each batch."""
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        out[start:start + len(chunk)] = embedder.embed(list(chunk))
        if progress:
            progress(start + len(chunk), len(texts))
    return out


def normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


class HashingEmbedder:
    """Deterministic offline embedder: signed feature hashing of n-grams."""

    def __init__(self, dim: int = 1024):
        if dim < 16:
            raise LatticeError(f"hashing embedder dimension must be >= 16, got {dim}")
        self.dim = int(dim)
        self.name = "hashing-v1" if self.dim == 1024 else f"hashing-v1-{self.dim}"

    def _features(self, text: str) -> Iterable[tuple[str, float]]:
        words = [w.lower() for w in _WORD.findall(text)]
        for w in words:
            yield "w:" + w, 1.0
            padded = f"<{w}>"
            for i in range(len(padded) - 2):
                yield "c:" + padded[i:i + 3], 0.25
        for a, b in zip(words, words[1:]):
            yield "b:" + a + " " + b, 0.5

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise LatticeError(f"text {row} is {type(text).__name__}, expected a string")
            counts: dict[int, float] = {}
            for feat, weight in self._features(text):
                h = zlib.crc32(feat.encode("utf-8"))
                col = h % self.dim
                sign = 1.0 if (h >> 31) & 1 else -1.0
                counts[col] = counts.get(col, 0.0) + sign * weight
            if counts:
                cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                vals = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                out[row, cols] = np.sign(vals) * np.log1p(np.abs(vals))  # sublinear tf
        return normalise_rows(out).astype(np.float32)


_REGISTRY: dict[str, Callable[[], Embedder]] = {"hashing-v1": HashingEmbedder}
DEFAULT_EMBEDDER = "hashing-v1"


def register_embedder(name: str, factory: Callable[[], Embedder]) -> None:
    _REGISTRY[name] = factory


def _load_extensions() -> None:
    """Register the embedders of core.knowledge (OpenAI, local MiniLM) on first use."""
    if "all-minilm-l6-v2" not in _REGISTRY:
        from . import knowledge  # noqa: F401  (registers on import)


def available_embedders() -> list[str]:
    _load_extensions()
    return sorted(_REGISTRY)


def get_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """The embedder registered under ``name`` (a clear error for an unknown one)."""
    if name not in _REGISTRY:
        m = re.fullmatch(r"hashing-v1-(\d{2,5})", name or "")
        if m and 16 <= int(m.group(1)) <= 16384:  # the hashing embedder at another dimension
            return HashingEmbedder(int(m.group(1)))
        _load_extensions()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise LatticeError(f"unknown embedder {name!r}; available: {', '.join(available_embedders())}") from None
    return factory()
