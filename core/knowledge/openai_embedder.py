"""OpenAI embeddings (``openai:<model>``, default model ``text-embedding-3-small``), batched.

Needs ``OPENAI_API_KEY``. The SDK client is built with ``max_retries=0``: transient
failures are retried by the shared loop of :mod:`core.retry`.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np

from core.errors import LatticeError
from core.knowledge.base import EmbeddingError, normalise_rows
from core.retry import RetryPolicy, call_with_retry

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
        expected to be 0; transient failures are retried here with the shared policy
        of :mod:`core.retry`.
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
