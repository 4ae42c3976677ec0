"""``python -m core reflect``: streams an offline answer; --json prints the record."""
from __future__ import annotations

import json

from core.cli import main


def test_reflect_json_offline(capsys):
    assert main(["reflect", "What does the Kuramoto model describe?", "--providers", "offline", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["provider"] == "offline" and record["lattice"] == "demo"
    assert "[sync-kuramoto-model]" in record["answer"]
    assert any(g["included"] for g in record["gems"]) and record["trace"][0]["outcome"] == "ok"
    assert record["tokens"]["prompt"] > 0


def test_reflect_json_gems_have_id_title_and_score_terms_best_first(capsys):
    assert main(["reflect", "What is the Kuramoto model?", "--providers", "offline", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert {"answer", "provider", "gems", "trace"} <= set(record)
    gems = record["gems"]
    # the demo is a memory lattice (hashing-v2, hybrid): every top gem is about Kuramoto coupling; the
    # mean-field form, which names the model most often, may rank above the model's own gem
    assert gems and all("Kuramoto" in g["title"] for g in gems[:3])
    assert "sync-kuramoto-model" in [g["id"] for g in gems[:3]]
    titles = {g["id"]: g["title"] for g in gems}
    assert titles["sync-kuramoto-model"] == "The Kuramoto model"
    for g in gems:
        assert isinstance(g["id"], str) and g["id"] == g["gem_id"]
        assert isinstance(g["title"], str) and g["title"].strip()
        for term in ("similarity", "coherence", "coherence_factor", "resonance", "interference", "score"):
            assert isinstance(g[term], float)
    assert [g["rank"] for g in gems] == list(range(1, len(gems) + 1))
    if all(g["interference"] == 0.0 for g in gems):  # beta = 0: best first means score descending
        scores = [g["score"] for g in gems]
        assert scores == sorted(scores, reverse=True)


def test_reflect_streams_text_and_reports_skips(capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["reflect", "How does exponential decay work?", "--providers", "openai,offline"]) == 0
    out, err = capsys.readouterr()
    assert "[decay-" in out
    assert "openai: skipped no OPENAI_API_KEY set" in err and "-- offline (extractive-v2)" in err


def test_reflect_unknown_lattice_and_provider_exit_2(capsys):
    assert main(["reflect", "q", "--lattice", "nope"]) == 2
    assert "unknown lattice 'nope'" in capsys.readouterr().err
    assert main(["reflect", "q", "--providers", "gpt"]) == 2
    assert "unknown LLM provider 'gpt'" in capsys.readouterr().err
