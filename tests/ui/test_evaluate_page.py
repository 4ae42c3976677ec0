"""The Evaluate page: the shipped MemoryBank set against two parameter sets and baselines."""
from __future__ import annotations

import pytest

from core.access import SYSTEM
from tests.ui.helpers import ROOT, app_as, chart_json, charts

EVALUATE = "pages/8_Evaluate.py"
GEMS = ROOT / "data" / "memorybank-en" / "gems.jsonl"


@pytest.fixture
def memorybank(db):
    db.import_path("memorybank", GEMS, SYSTEM, preset="memory")
    return db


def test_a_lattice_without_the_evidence_offers_the_right_one(memorybank):
    at = app_as("researcher", EVALUATE)  # the demo lattice is selected first
    assert not at.exception
    assert any("does not hold this set's evidence" in w.value for w in at.warning)
    at.button(key="ev_switch").click().run()
    assert at.session_state["lattice_name"] == "memorybank"
    assert any("press Evaluate" in i.value for i in at.info)


def test_two_parameter_sets_side_by_side_with_baselines_curve_and_reasons(memorybank):
    at = app_as("researcher", EVALUATE)
    at.button(key="ev_switch").click().run()
    at.text_input(key="ev_B_half_preset seed").set_value("42 min").run()
    at.button(key="ev_run").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["ranker"]) == ["A", "B", "similarity", "bm25"]
    assert table.loc[1, "Recall@10"].startswith("0.000")  # the seed's 42 minutes forget a week-old history
    assert not table.loc[0, "Recall@10"].startswith("0.000")
    titles = [chart_json(c)["layout"]["title"]["text"] for c in charts(at)]
    assert titles == ["Retrieval quality", "Recall@10 against the half-life"]
    curve = chart_json(charts(at)[1])
    assert curve["layout"]["xaxis"]["type"] == "log" and "half-life" in curve["layout"]["xaxis"]["title"]["text"]
    per_q = at.dataframe[1].value
    assert (per_q["why B missed"].str.contains("suppressed by decay")).any()
    at.button(key="ev_save").click().run()
    assert any("Saved as run" in s.value for s in at.success)
    run = memorybank.list_runs("memorybank").iloc[0]
    assert run["metrics"]["kind"] == "evaluation" and len(run["metrics"]["lattice_sha256"]) == 64


def test_a_bad_half_life_is_an_inline_error(memorybank):
    at = app_as("researcher", EVALUATE)
    at.button(key="ev_switch").click().run()
    at.text_input(key="ev_A_half_the lattice's parameters").set_value("soon").run()
    assert any("half_life" in e.value for e in at.error) and not at.exception


def test_a_viewer_sees_the_page_but_cannot_save(memorybank):
    at = app_as("viewer", EVALUATE)
    at.button(key="ev_switch").click().run()
    at.button(key="ev_run").click().run()
    assert not at.exception and len(at.dataframe) == 2
    assert not [b for b in at.button if b.key == "ev_save"]
