"""New ``memory`` lattices embed with hashing-v2 (the embedder the hybrid retriever was tuned
with) when no embedder is given, on every path that creates one; other presets keep
hashing-v1; an explicit embedder wins; an existing lattice keeps its own."""
from pathlib import Path

import numpy as np
import pytest

from core.access import SYSTEM
from core.engine import preset_params
from core.knowledge import HYBRID_EMBEDDER, default_embedder, get_embedder

GEMS = Path(__file__).resolve().parents[2] / "data" / "memorybank-en" / "gems.jsonl"


def test_the_rule():
    assert default_embedder("memory") == HYBRID_EMBEDDER == "hashing-v2"
    assert default_embedder("seed") == default_embedder("archive") == default_embedder(None) == "hashing-v1"


@pytest.mark.parametrize("kwargs, embedder, retriever", [
    ({"preset": "memory"}, "hashing-v2", "hybrid"),
    ({"clock": "wall"}, "hashing-v2", "hybrid"),  # a wall lattice's default preset is memory
    ({"params": {"preset": "memory", "k": 8}}, "hashing-v2", "hybrid"),
    ({"params": preset_params("memory")}, "hashing-v2", "hybrid"),
    ({}, "hashing-v1", "similarity"),  # manual: seed
    ({"preset": "seed"}, "hashing-v1", "similarity"),
    ({"preset": "archive"}, "hashing-v1", "similarity"),
    ({"preset": "memory", "embedder": "hashing-v1"}, "hashing-v1", "hybrid"),  # explicit wins
])
def test_create_lattice_default_embedder(store, kwargs, embedder, retriever):
    info = store.create_lattice("x", SYSTEM, **kwargs)
    assert (info.embedder, info.params.retriever) == (embedder, retriever)
    assert info.dim == 1024


def test_import_creates_memory_lattice_with_hashing_v2(store):
    report = store.import_path("mb", GEMS, SYSTEM, preset="memory")
    assert report.imported == 566
    info = store.info("mb")
    assert (info.embedder, info.params.preset, info.params.retriever) == ("hashing-v2", "memory", "hybrid")
    # the stored vectors are hashing-v2's (of the gem's content, as the store embeds it)
    first = store.gem_texts("mb").iloc[0]
    stored = store.embeddings("mb", [first["id"]])[0]
    np.testing.assert_allclose(stored, get_embedder("hashing-v2").embed([first["content"]])[0], atol=1e-6)
    assert not np.allclose(stored, get_embedder("hashing-v1").embed([first["content"]])[0], atol=1e-3)


def test_import_seed_keeps_hashing_v1_and_existing_lattices_keep_theirs(store, tmp_path):
    store.import_path("plain", GEMS, SYSTEM, preset="seed")
    assert store.info("plain").embedder == "hashing-v1"
    # an existing v1 lattice given memory parameters keeps its embedder: importing more gems into it
    store.create_lattice("old", SYSTEM, preset="memory", embedder="hashing-v1")
    store.import_path("old", GEMS, SYSTEM)
    assert store.info("old").embedder == "hashing-v1"


def test_the_ui_import_form_creates_memory_lattices_with_hashing_v2(store):
    """The Lattice page's import into a new lattice (ui.gems.import_uploads, the preset select)."""
    from ui.gems import import_uploads

    class Upload:
        name = "gems.jsonl"

        def getvalue(self) -> bytes:
            return GEMS.read_bytes()

    out = import_uploads(store, [Upload()], "ui-memory", SYSTEM, split_headings=False, skip_bad=False,
                         preset="memory")
    assert out["kind"] == "success", out["message"]
    assert store.info("ui-memory").embedder == "hashing-v2"
    out = import_uploads(store, [Upload()], "ui-seed", SYSTEM, split_headings=False, skip_bad=False, preset="seed")
    assert out["kind"] == "success" and store.info("ui-seed").embedder == "hashing-v1"
