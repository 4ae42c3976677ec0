"""Reflection page under the hybrid retriever (the memory preset's): the ranking table shows the
similarity, BM25, the date match and the fused score the rule reads, beside the decay terms;
a similarity lattice's table has none of them. And the Lattice page's preset select says which
embedder a new lattice gets."""
from __future__ import annotations

import pytest

from core.access import SYSTEM
from core.knowledge import W_LEXICAL
from tests.ui.helpers import app_as, texts
from ui.reflection_view import ranked_frame, retriever_of

REFLECTION = "pages/4_Reflection.py"
QUESTION = "How does a Kuramoto model synchronise?"
HYBRID_COLUMNS = ["Similarity s", "BM25 (normalised)", "Date match", "Fused"]


def ask(at, question: str):
    at.chat_input(key="refl_input").set_value(question).run()
    assert not at.exception, at.exception
    return at


def ranked_frames(at) -> list:
    return [d.value for d in at.dataframe if "Score" in d.value.columns and "Similarity s" in d.value.columns]


def test_the_hybrid_table_shows_bm25_date_match_and_fused(db):
    assert db.info("demo").params.retriever == "hybrid"  # the demo runs under the memory preset
    at = ask(app_as("researcher", REFLECTION), QUESTION)
    [ranked] = ranked_frames(at)
    cols = list(ranked.columns)
    at_sim = cols.index("Similarity s")
    assert cols[at_sim:at_sim + 4] == HYBRID_COLUMNS  # after the similarity, before the decay terms
    assert {"Coherence c", "Coherence factor c^α", "Floor φ", "Resonance s·(φ + (1 − φ)·c^α)", "Score"} <= set(cols)
    for _, row in ranked.iterrows():
        assert row["Fused"] == pytest.approx((1 - W_LEXICAL) * row["Similarity s"] + W_LEXICAL * row["BM25 (normalised)"])
    assert (ranked["BM25 (normalised)"] > 0).any()
    assert "**Hybrid retriever**" in texts(at.caption)


def test_a_similarity_lattice_shows_no_hybrid_columns(db):
    db.update_params("demo", db.info("demo").params.replace(retriever="similarity"), SYSTEM)
    at = ask(app_as("researcher", REFLECTION), QUESTION)
    [ranked] = ranked_frames(at)
    assert not set(HYBRID_COLUMNS[1:]) & set(ranked.columns)
    assert "**Hybrid retriever**" not in texts(at.caption)


def test_ranked_frame_reads_the_record_alone():
    gem = {"rank": 1, "gem_id": "a", "similarity": 0.5, "coherence": 1.0, "coherence_factor": 1.0, "floor": 0.6,
           "resonance": 0.4, "interference": 0.0, "score": 0.4, "uncertainty": 0.1}
    plain = {"ranking": {"scoring": "floor"}, "gems": [gem]}
    hybrid = {"ranking": {"scoring": "floor"}, "gems": [{**gem, "bm25": 0.2, "date_match": 1.0, "fused": 0.4}]}
    assert retriever_of(plain) == "similarity" and retriever_of(hybrid) == "hybrid"
    assert "Fused" not in ranked_frame(plain, {}).columns
    frame = ranked_frame(hybrid, {"a": "A"})
    assert frame.loc[0, "Date match"] == 1.0 and frame.loc[0, "Fused"] == 0.4 and frame.loc[0, "title"] == "A"


def test_the_import_preset_select_names_the_new_lattices_embedder():
    at = app_as("researcher", "pages/1_Lattice.py")
    at.text_input(key="lat_import_target").set_value("brand-new").run()
    assert not at.exception, at.exception
    select = at.selectbox(key="lat_import_preset")
    assert "memory: **hashing-v2**" in select.help and "seed: **hashing-v1**" in select.help
