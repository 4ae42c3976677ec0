"""The embedder interface and what every embedder shares: batching, row normalisation, checks.

An embedder has a ``name`` and a ``dim`` and turns texts into L2-normalised float32
rows (float32 halves storage and is ample for cosine similarity). A lattice records
the name and dimension of the embedder that built it; mixing embedders is an error
(:func:`check_embedder`). The embedders themselves live one per module
(:mod:`core.knowledge.hashing`, :mod:`core.knowledge.openai_embedder`,
:mod:`core.knowledge.minilm`) and are found by name through :mod:`core.knowledge.registry`.
"""
from __future__ import annotations

from typing import Callable, Protocol, Sequence

import numpy as np

from core.errors import LatticeError


class EmbeddingError(LatticeError):
    """An embedder cannot produce embeddings (missing key or package, API failure...)."""


class EmbedderMismatchError(LatticeError):
    """A query is embedded with another embedder (or dimension) than the lattice's gems."""


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
