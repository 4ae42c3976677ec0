"""``python -m core eval``: the shipped MemoryBank set imported as timestamped gems, ranked as of
each question's time, every ranker side by side; nothing written; clear errors."""
from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT

DATA = ROOT / "data" / "memorybank-en"


@pytest.fixture
def memorybank(cli):
    code, out, err = cli("import", str(DATA / "gems.jsonl"), "--lattice", "mb", "--preset", "memory")
    assert code == 0, err
    return cli


def test_eval_prints_every_ranker_with_intervals_and_changes_nothing(memorybank):
    cli = memorybank
    before = cli.json("log", "--lattice", "mb", "--limit", "0")
    version = [x for x in cli.json("lattices") if x["name"] == "mb"][0]["version"]
    data = cli.json("eval", "--lattice", "mb", "--questions", str(DATA / "questions.jsonl"), "--ranker", "all")
    assert data["questions"] == 100 and data["answerable"] == 99
    assert set(data["overall"]) == {"recall@5", "recall@10", "mrr", "ndcg@10"}
    for name in ("lattice", "similarity", "bm25", "langchain", "generative-agents", "memorybank"):
        overall = data["rankers"][name]["overall"]
        for m in overall.values():
            assert 0.0 <= m["low"] <= m["value"] <= m["high"] <= 1.0
        assert set(data["rankers"][name]["by_category"]) >= {"dated", "recommendation", "preference"}
    # BM25 finds the evidence words; it is the strong baseline on this set
    assert data["rankers"]["bm25"]["overall"]["recall@10"]["value"] > 0.7
    assert cli.json("log", "--lattice", "mb", "--limit", "0") == before
    assert [x for x in cli.json("lattices") if x["name"] == "mb"][0]["version"] == version
    code, out, err = cli("eval", "--lattice", "mb", "--questions", str(DATA / "questions.jsonl"),
                         "--set", "half_life=1h", "--set", "scoring=product", "--by-category")
    assert code == 0 and "recall@5" in out and "by category" in out and "dated" in out


def test_a_short_half_life_under_the_seed_rule_forgets_the_history(memorybank):
    cli = memorybank
    seed = cli.json("eval", "--lattice", "mb", "--questions", str(DATA / "questions.jsonl"),
                    "--set", "preset=seed")
    memory = cli.json("eval", "--lattice", "mb", "--questions", str(DATA / "questions.jsonl"))
    assert seed["overall"]["recall@10"]["value"] == 0.0  # days-old gems under a 42-minute half-life
    assert memory["overall"]["recall@10"]["value"] > 0.5


@pytest.mark.parametrize("args, words", [
    (["--ranker", "magic"], "ranker"),
    (["--set", "half_life=soon"], "half_life"),
    (["--lattice", "nope"], "nope"),
])
def test_bad_options_are_one_line_errors(memorybank, args, words):
    code, out, err = memorybank("eval", "--lattice", "mb", "--questions", str(DATA / "questions.jsonl"), *args)
    assert code == 2 and words in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_cut_offs_are_usage_errors(memorybank, capsys):
    for k in ("0", "five", ""):
        with pytest.raises(SystemExit) as exit_:
            memorybank("eval", "--lattice", "mb", "--questions", str(DATA / "questions.jsonl"), "--k", k)
        assert exit_.value.code == 2 and "--k expects" in capsys.readouterr().err


def test_a_question_set_that_does_not_match_the_lattice_is_refused(memorybank, tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text(json.dumps({"question": "x", "asked_at": "2023-05-07T12:00:00Z", "evidence": ["nope"]}) + "\n")
    code, out, err = memorybank("eval", "--lattice", "mb", "--questions", str(bad))
    assert code == 2 and "'nope' is not in lattice 'mb'" in err
    code, out, err = memorybank("eval", "--lattice", "mb", "--questions", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "no such file" in err


def test_evaluating_a_wall_clock_lattice_writes_no_catch_up(cli, tmp_path):
    rows = [{"id": "a", "content": "the lighthouse keeper", "created_at": "2026-01-01T00:00:00Z"}]
    gems = tmp_path / "g.jsonl"
    gems.write_text(json.dumps(rows[0]) + "\n")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "lighthouse keeper", "asked_at": 0.0,
                                     "evidence": ["a"]}) + "\n")
    assert cli("import", str(gems), "--lattice", "live", "--clock", "wall")[0] == 0
    before = cli.json("log", "--lattice", "live", "--limit", "0")
    data = cli.json("eval", "--lattice", "live", "--questions", str(questions))
    assert data["overall"]["recall@5"]["value"] == 1.0 and data["params"]["preset"] == "memory"
    assert cli.json("log", "--lattice", "live", "--limit", "0") == before
