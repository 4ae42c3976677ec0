"""The embedder registry: a table of dotted paths, imported on demand, no registration on import."""
from __future__ import annotations

import ast

import pytest

from core.errors import LatticeError
from core.knowledge import HashingEmbedder, MiniLMEmbedder, OpenAIEmbedder
from core.knowledge.openai_embedder import OPENAI_EMBEDDING_DIMS
from core.knowledge.registry import EMBEDDERS, available_embedders, get_embedder
from tests.conftest import ROOT


def test_the_table_names_every_openai_model_and_the_classes_exist():
    openai_names = {n for n in EMBEDDERS if n.startswith("openai:")}
    assert openai_names == {f"openai:{m}" for m in OPENAI_EMBEDDING_DIMS}
    emb = get_embedder("openai:text-embedding-3-large")
    assert isinstance(emb, OpenAIEmbedder) and emb.dim == 3072 and emb.name == "openai:text-embedding-3-large"
    assert available_embedders() == sorted(EMBEDDERS)
    assert EMBEDDERS["all-minilm-l6-v2"][0].endswith(":" + MiniLMEmbedder.__name__)


def test_hashing_at_other_dimensions_and_unknown_names():
    emb = get_embedder("hashing-v1-64")
    assert isinstance(emb, HashingEmbedder) and emb.dim == 64 and emb.name == "hashing-v1-64"
    assert get_embedder().name == "hashing-v1" and get_embedder("hashing-v1") is not get_embedder("hashing-v1")
    for bad in ("hashing-v1-8", "hashing-v1-10", "hashing-v1-99999", "word2vec", ""):
        with pytest.raises(LatticeError, match="unknown embedder"):
            get_embedder(bad)


def test_the_registry_names_embedders_by_path_and_imports_none():
    tree = ast.parse((ROOT / "core/knowledge/registry.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"__future__", "importlib", "re", "core.errors", "core.knowledge.base"}
    for path, _ in EMBEDDERS.values():
        module, _, attr = path.partition(":")
        assert (ROOT / (module.replace(".", "/") + ".py")).exists() and attr
