"""Evaluation sets parse strictly; metrics follow their definitions; intervals are reproducible."""
import json
import math

import numpy as np
import pytest

from core.errors import ValidationError
from core.evaluation import bootstrap, load_questions, question_metrics, question_set


def test_metrics_follow_their_definitions():
    ranks = [np.array([1.0, 7.0]), np.array([3.0]), np.array([np.inf, 12.0]), np.array([])]
    m = question_metrics(ranks, ks=(5, 10))
    assert m["recall@5"][:3].tolist() == [0.5, 1.0, 0.0] and np.isnan(m["recall@5"][3])
    assert m["recall@10"][:3].tolist() == [1.0, 1.0, 0.0]
    assert m["mrr"][:3].tolist() == [1.0, 1 / 3, 1 / 12]
    ideal2 = 1 + 1 / math.log2(3)
    assert m["ndcg@10"][0] == pytest.approx((1 + 1 / math.log2(8)) / ideal2)
    assert m["ndcg@10"][1] == pytest.approx((1 / math.log2(4)) / 1.0)
    assert m["ndcg@10"][2] == 0.0


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    v = np.random.default_rng(0).uniform(0, 1, 200)
    a, b = bootstrap(v, seed=3), bootstrap(v, seed=3)
    assert a == b and a.low < a.value < a.high and a.n == 200
    assert a.value == pytest.approx(v.mean())
    assert (a.high - a.low) == pytest.approx(2 * 1.96 * v.std() / np.sqrt(200), rel=0.2)
    assert bootstrap(np.array([np.nan])).n == 0


def _write(tmp_path, rows):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_a_question_set_loads_with_defaults_and_a_stable_hash(tmp_path):
    rows = [{"question": "What did I see?", "asked_at": "2023-05-07T12:00:00Z", "evidence": ["a", "b"]}, "",
            {"id": "x", "question": "Which book?", "asked_at": 4.5, "evidence": [], "category": "dated",
             "scope": "Emily"}]
    qs = load_questions(_write(tmp_path, rows))
    assert [q.id for q in qs] == ["q1", "x"] and qs.questions[0].category == "all"
    assert qs.questions[0].asked_at.utcoffset().total_seconds() == 0 and qs.questions[1].asked_at == 4.5
    assert qs.sha256 == load_questions(_write(tmp_path, rows)).sha256
    assert qs.categories == ["all", "dated"]


@pytest.mark.parametrize("row, field, words", [
    ({"question": "", "asked_at": 1, "evidence": []}, "question", "missing or empty"),
    ({"question": "q", "evidence": []}, "asked_at", "missing"),
    ({"question": "q", "asked_at": "2023-05-07T12:00:00", "evidence": []}, "asked_at", "no time zone"),
    ({"question": "q", "asked_at": "yesterday", "evidence": []}, "asked_at", "not an ISO 8601"),
    ({"question": "q", "asked_at": float("nan"), "evidence": []}, "asked_at", "finite"),
    ({"question": "q", "asked_at": 1, "evidence": "a"}, "evidence", "list of gem ids"),
    ({"question": "q", "asked_at": 1, "evidence": [], "colour": "red"}, "colour", "unknown field"),
    ("[1, 2", "questions", "not a JSON object"),
])
def test_bad_rows_name_file_line_and_field(tmp_path, row, field, words):
    path = _write(tmp_path, [{"question": "ok", "asked_at": 0, "evidence": []}, row])
    with pytest.raises(ValidationError, match=words) as err:
        load_questions(path)
    assert err.value.field == field and f"{path}:2" in str(err.value)


def test_duplicate_ids_and_empty_sets_are_refused(tmp_path):
    with pytest.raises(ValidationError, match="duplicate question id"):
        question_set([{"id": "a", "question": "q", "asked_at": 0, "evidence": []}] * 2)
    with pytest.raises(ValidationError, match="no questions"):
        load_questions(_write(tmp_path, [""]))
