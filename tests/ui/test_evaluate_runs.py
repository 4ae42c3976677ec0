"""The Evaluate page compares two saved runs (issue 14, item 6): their parameter sets are
re-evaluated as set A and set B, beside the figures they saved, and the page says when a run's
question set or lattice snapshot differs from now (the run then need not reproduce)."""
from __future__ import annotations

import json

import pytest

from core.access import SYSTEM
from core.engine import apply_settings, preset_params
from core.evaluation import corpus_from_store, evaluate, load_questions, question_set
from tests.ui.helpers import ROOT, app_as, texts
from ui.evaluate import SHIPPED_QUESTIONS, run_record

EVALUATE = "pages/8_Evaluate.py"
GEMS = ROOT / "data" / "memorybank-en" / "gems.jsonl"


@pytest.fixture
def memorybank(db):
    db.import_path("memorybank", GEMS, SYSTEM, preset="memory")
    return db


def save(store, sets: dict, questions=None, name: str = "evaluation") -> int:
    """A run as the page saves it: the sets evaluated (plus a baseline) and what reproduces them."""
    questions = questions or load_questions(SHIPPED_QUESTIONS)
    corpus = corpus_from_store(store, "memorybank")
    points = [(label, "lattice", p) for label, p in sets.items()] + [("bm25", "bm25", next(iter(sets.values())))]
    results = evaluate(corpus, questions, points, explain=False)
    return store.save_run("memorybank", name, results[0].params, run_record(questions, corpus, results, seed=0), SYSTEM)


def open_runs(at):
    at.button(key="ev_switch").click().run()
    at.radio(key="ev_mode").set_value("two saved runs").run()
    assert not at.exception, at.exception
    return at


def frame(at, column: str):
    """The first table on the page with ``column`` (AppTest does not expose a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def lattice_params(store):
    return store.info("memorybank").params


def test_two_saved_runs_are_re_evaluated_as_sets_a_and_b_and_reproduce(memorybank):
    base = lattice_params(memorybank)
    two_days = apply_settings(base, {"half_life": "2 days"})
    first = save(memorybank, {"A": base, "B": preset_params("seed", base)}, name="first")
    second = save(memorybank, {"A": two_days, "B": preset_params("archive", base)}, name="second")
    at = open_runs(app_as("researcher", EVALUATE))
    at.selectbox(key="ev_run_A").set_value(first).run()
    at.selectbox(key="ev_run_B").set_value(second).run()
    assert at.selectbox(key=f"ev_run_A_set_{first}").value == "A"
    assert at.selectbox(key=f"ev_run_B_set_{second}").value == "A"  # two runs: each run's first set
    assert at.selectbox(key=f"ev_run_B_set_{second}").options == ["A", "B"]  # the bm25 baseline is no set
    at.button(key="ev_run").click().run()
    assert not at.exception, at.exception
    result = at.session_state["evaluate_result"]
    assert result["results"][0].params == base and result["results"][1].params == two_days
    shown = texts(at.caption)
    assert f"with φ = {base.coherence_floor:g}" in shown  # each side says what its set is
    assert "Same question set" in shown and "Same lattice snapshot" in shown and not at.warning
    table = frame(at, "change")
    assert list(table["from"].unique()) == [f"run {first}, set A", f"run {second}, set A"]
    assert len(table) == 8 and (table["change"].abs() < 1e-12).all()  # same data, same seed: the same figures
    saved = memorybank.get_run(second)["metrics"]["points"]["A"]["recall@10"]["value"]
    assert table.query("set == 'B' and metric == 'recall@10'")["now"].item() == pytest.approx(saved, abs=1e-12)
    assert list(frame(at, "ranker")["ranker"]) == ["A", "B", "similarity", "bm25"]


def test_one_run_compares_its_own_two_sets_and_another_of_its_sets_can_be_picked(memorybank):
    base = lattice_params(memorybank)
    only = save(memorybank, {"A": base, "B": preset_params("seed", base)})
    at = open_runs(app_as("researcher", EVALUATE))
    assert at.selectbox(key=f"ev_run_B_set_{only}").value == "B"
    at.button(key="ev_run").click().run()
    table = at.session_state["evaluate_result"]["results"]
    assert table[1].params == preset_params("seed", base)
    assert frame(at, "ranker").loc[1, "Recall@10"].startswith("0.000")  # the seed forgets
    at.selectbox(key=f"ev_run_B_set_{only}").set_value("A").run()
    assert "evaluate_result" in at.session_state and any("press Evaluate" in i.value for i in at.info)  # stale hidden


def test_a_run_on_other_questions_or_an_older_lattice_is_said_to_differ(memorybank):
    rows = [json.loads(x) for x in SHIPPED_QUESTIONS.read_text("utf-8").splitlines() if x.strip()]
    base = lattice_params(memorybank)
    old = save(memorybank, {"A": base, "B": preset_params("seed", base)}, questions=question_set(rows[:40], "first 40"))
    memorybank.simulate("memorybank", 12.0, SYSTEM)  # the lattice moves on after the run was saved
    at = open_runs(app_as("researcher", EVALUATE))
    assert "Question set differs" in texts(at.warning) and "40 questions then, 100 now" in texts(at.warning)
    at.button(key="ev_run").click().run()
    assert not at.exception, at.exception
    warned = texts(at.warning)
    assert "Lattice differs" in warned and "need not reproduce" in warned
    assert f"run {old}, set A" in set(frame(at, "change")["from"])


def test_no_saved_run_says_how_to_make_one_and_a_broken_set_is_an_inline_error(memorybank):
    at = open_runs(app_as("researcher", EVALUATE))
    assert "No evaluation run is saved" in texts(at.info) and not [b for b in at.button if b.key == "ev_run"]
    metrics = {"kind": "evaluation", "seed": 0, "questions_sha256": "x" * 64, "questions": 100,
               "lattice_sha256": "y" * 64,
               "points": {"A": {"ranker": "lattice", "params": {"lambda_": 0.1, "half_lief": 3}},
                          "B": {"ranker": "lattice", "params": lattice_params(memorybank).to_dict()}}}
    memorybank.save_run("memorybank", "hand-made", lattice_params(memorybank), metrics, SYSTEM)
    memorybank.save_run("memorybank", "a sweep", lattice_params(memorybank), {"kind": "sweep"}, SYSTEM)
    at.run()
    assert len(at.selectbox(key="ev_run_A").options) == 1  # the sweep run is no evaluation
    assert "not a valid parameter set today" in texts(at.error) and "half_lief" in texts(at.error)
    assert not at.exception


def test_a_viewer_can_compare_saved_runs(memorybank):
    base = lattice_params(memorybank)
    save(memorybank, {"A": base, "B": preset_params("seed", base)})
    at = open_runs(app_as("viewer", EVALUATE))
    at.button(key="ev_run").click().run()
    assert not at.exception and frame(at, "change")["change"].abs().max() < 1e-12
