"""``core.service.search`` (``python -m core search``, the REST API's search) on a lattice whose
parameters say ``retriever=hybrid``: the hybrid's terms in every ranked gem, the same ranking
from the store as from a Workbench's lattice cache, the date a question names found, and a
similarity lattice without any of it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.access import SYSTEM
from core.errors import ValidationError
from core.knowledge import W_DATE, W_LEXICAL
from core.service import Workbench, search

GEMS = Path(__file__).resolve().parents[2] / "data" / "memorybank-en" / "gems.jsonl"
DATED = "What did Emily talk about on May 2nd?"


@pytest.fixture
def mb(store):
    store.import_path("mb", GEMS, SYSTEM, preset="memory")
    return store


def test_hybrid_search_shows_every_term_and_fuses_them(mb):
    out = search(mb, "mb", "which science fiction movie did I recommend?", k=5)
    assert out["retriever"] == "hybrid" and out["scoring"] == "floor" and len(out["gems"]) == 5
    for g in out["gems"]:
        assert 0 <= g["bm25"] <= 1 and g["date_match"] == 0.0
        assert g["fused"] == pytest.approx((1 - W_LEXICAL) * g["similarity"] + W_LEXICAL * g["bm25"])
        # floor: the rule reads the fused score where it read the similarity
        assert g["resonance"] == pytest.approx(g["fused"] * (g["floor"] + (1 - g["floor"]) * g["coherence_factor"]))
    assert [g["rank"] for g in out["gems"]] == [1, 2, 3, 4, 5]
    scores = [g["score"] for g in out["gems"]]
    assert scores == sorted(scores, reverse=True) and any(g["bm25"] > 0 for g in out["gems"])


def test_a_date_the_question_names_finds_that_days_gems(mb):
    out = search(mb, "mb", DATED, k=10)
    times = mb.gem_times("mb").set_index("gem_id")["created_at"]
    days = {g["gem_id"]: times[g["gem_id"]].date().isoformat() for g in out["gems"]}
    matched = [g for g in out["gems"] if g["date_match"] == 1.0]
    assert matched and all(days[g["gem_id"]] == "2023-05-02" for g in matched)
    assert all(g["date_match"] == 0.0 for g in out["gems"] if days[g["gem_id"]] != "2023-05-02")
    for g in matched:
        base = (1 - W_LEXICAL) * g["similarity"] + W_LEXICAL * g["bm25"]
        assert g["fused"] == pytest.approx((1 - W_DATE) * base + W_DATE)
    assert out["gems"][0]["gem_id"].startswith("emily-20230502")  # Emily's words of that day first


def test_the_store_read_and_the_lattice_cache_rank_alike(mb):
    wb = Workbench(mb)
    for q in (DATED, "I once watched a romance movie, what was its name?", "jazz"):
        for at in (None, "300"):
            a = search(mb, "mb", q, at, lattices=wb.lattices, embedder=wb.embedder)
            b = search(mb, "mb", q, at)
            assert a == b
    assert wb.lattices.stats()["hybrid_builds"] == 1  # one index for six searches


def test_a_similarity_lattice_has_no_hybrid_terms(mb):
    mb.update_params("mb", mb.info("mb").params.replace(retriever="similarity"), SYSTEM)
    out = search(mb, "mb", DATED, k=5)
    assert out["retriever"] == "similarity"
    assert not {"bm25", "date_match", "fused"} & set().union(*(g.keys() for g in out["gems"]))


def test_bad_input_still_changes_nothing(mb):
    version = mb.info("mb").version
    with pytest.raises(ValidationError, match="question"):
        search(mb, "mb", "   ")
    with pytest.raises(ValidationError, match="k"):
        search(mb, "mb", "movie", k=0)
    assert mb.info("mb").version == version


def test_the_cli_prints_the_hybrid_columns(cli, tmp_path):
    code, _, err = cli("import", str(GEMS), "--lattice", "mb", "--preset", "memory", "--embedder", "hashing-v2")
    assert code == 0, err
    code, out, err = cli("search", DATED, "--lattice", "mb", "--k", "3")
    assert code == 0, err
    head = next(line for line in out.splitlines() if "bm25" in line)
    assert {"similarity", "bm25", "date_match", "fused", "floor"} <= set(head.split())
    rows = cli.json("search", DATED, "--lattice", "mb", "--k", "3")
    assert len(rows) == 3 and pd.DataFrame(rows)["date_match"].max() == 1.0
