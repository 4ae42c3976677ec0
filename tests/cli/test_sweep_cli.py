"""``python -m core sweep``: retrieval outcomes over a grid on the shipped set, or lattice statistics;
the best point marked; read-only; one-line errors."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT

DATA = ROOT / "data" / "memorybank-en"


@pytest.fixture
def mb(cli):
    assert cli("import", str(DATA / "gems.jsonl"), "--lattice", "mb", "--preset", "memory")[0] == 0
    return cli


def test_a_retrieval_sweep_over_half_life_and_floor(mb):
    before = mb.json("log", "--lattice", "mb", "--limit", "0")
    data = mb.json("sweep", "--lattice", "mb", "--questions", str(DATA / "questions.jsonl"),
                   "--over", "half_life=1h:30d:3:log", "--over", "coherence_floor=0:0.6:3", "--metric", "mrr")
    assert data["axes"] == ["half_life", "coherence_floor"] and len(data["points"]) == 9
    values = [p["mrr"] for p in data["points"]]
    assert data["best"]["mrr"] == max(values)
    assert all(p["mrr_low"] <= p["mrr"] <= p["mrr_high"] for p in data["points"])
    # floor 0 under a one-hour half-life buries every week-old gem; a floor brings them back
    by = {(round(p["half_life"], 3), p["coherence_floor"]): p["mrr"] for p in data["points"]}
    assert by[(1.0, 0.0)] < by[(1.0, 0.3)]
    assert mb.json("log", "--lattice", "mb", "--limit", "0") == before
    code, out, err = mb("sweep", "--lattice", "mb", "--questions", str(DATA / "questions.jsonl"),
                        "--over", "half_life=1h:1y:4:log")
    assert code == 0 and "recall@10" in out and "* best" in out and "60 min" in out and "1 year" in out


def test_a_lattice_statistics_sweep_without_questions(mb):
    data = mb.json("sweep", "--lattice", "mb", "--over", "half_life=1h:1y:3:log", "--horizon", "48")
    coherence = [p["mean_coherence"] for p in data["points"]]
    assert coherence == sorted(coherence) and data["best"]["half_life"] == pytest.approx(24 * 365.25)


@pytest.mark.parametrize("args, words", [
    (["--over", "scoring=0:1:3"], "cannot be swept"),
    (["--over", "half_life=1h:1d:3", "--metric", "accuracy"], "metric"),
    (["--over", "half_life=1d:1h:3"], "LOW < HIGH"),
])
def test_bad_sweeps_are_one_line_errors(mb, args, words):
    code, out, err = mb("sweep", "--lattice", "mb", "--questions", str(DATA / "questions.jsonl"), *args)
    assert code == 2 and words in err and err.count("\n") == 1
