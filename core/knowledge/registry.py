"""Embedders by name: a table of dotted paths, each imported only when its embedder is asked for.

Nothing registers itself: the table below is the whole list. An entry is
``name -> ("module:Class", args)``; :func:`get_embedder` imports the module and calls
``Class(*args)``. ``hashing-v1-<dim>`` and ``hashing-v2-<dim>`` (16 <= dim <= 16384) are the
hashing embedders at another dimension.
"""
from __future__ import annotations

import importlib
import re

from core.errors import LatticeError
from core.knowledge.base import Embedder

DEFAULT_EMBEDDER = "hashing-v1"

_OPENAI = "core.knowledge.openai_embedder:OpenAIEmbedder"
# the OpenAI models are those of core.knowledge.openai_embedder.OPENAI_EMBEDDING_DIMS (a test checks)
EMBEDDERS: dict[str, tuple[str, tuple]] = {
    "hashing-v1": ("core.knowledge.hashing:HashingEmbedder", ()),
    "hashing-v1-keyed": ("core.knowledge.keyed_hashing:KeyedHashingEmbedder", ()),  # LATTICE_EMBEDDING_KEY
    "hashing-v2": ("core.knowledge.hashing_v2:HashingEmbedderV2", ()),  # static IDF weights
    "openai:text-embedding-3-small": (_OPENAI, ("text-embedding-3-small",)),
    "openai:text-embedding-3-large": (_OPENAI, ("text-embedding-3-large",)),
    "openai:text-embedding-ada-002": (_OPENAI, ("text-embedding-ada-002",)),
    "all-minilm-l6-v2": ("core.knowledge.minilm:MiniLMEmbedder", ()),
}
_HASHING_AT = re.compile(r"(hashing-v[12])-(\d{2,5})")


def _load(path: str) -> type:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def available_embedders() -> list[str]:
    return sorted(EMBEDDERS)


def get_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """A new embedder ``name`` (a clear error for an unknown one)."""
    if name not in EMBEDDERS:
        m = _HASHING_AT.fullmatch(name or "")
        if m and 16 <= int(m.group(2)) <= 16384:  # a hashing embedder at another dimension
            return _load(EMBEDDERS[m.group(1)][0])(int(m.group(2)))
        raise LatticeError(f"unknown embedder {name!r}; available: {', '.join(available_embedders())}")
    path, args = EMBEDDERS[name]
    return _load(path)(*args)
