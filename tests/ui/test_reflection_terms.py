"""Reflection page: every term of the lattice's scoring rule per retrieved gem, the "kept: most
similar" marker, and the real cause when nothing resonates (issue 13, item 4)."""
from __future__ import annotations

from core.access import SYSTEM, Actor
from core.engine import LatticeParams
from tests.ui.helpers import app_as, chart_json, charts, texts

REFLECTION = "pages/4_Reflection.py"
QUESTION = "What is decoherence?"


def ask(at, question: str):
    at.chat_input(key="refl_input").set_value(question).run()
    assert not at.exception, at.exception
    return at


def ranked_frames(at) -> list:
    return [d.value for d in at.dataframe if "Score" in d.value.columns and "Similarity s" in d.value.columns]


def seed_params(db, **changes) -> LatticeParams:
    """The seed's parameters in the demo's time unit, with ``changes``: the tests do not depend on
    the demo's own preset."""
    return LatticeParams(time_unit=db.info("demo").params.time_unit).replace(**changes)


def test_floor_scoring_shows_its_terms_and_the_kept_most_similar_gem(db, fresh_database):
    db.update_params("demo", seed_params(db, scoring="floor", coherence_floor=0.0, k=3), SYSTEM)
    from ui.services import _workbench
    engine, _ = _workbench(fresh_database).engine("demo", Actor("researcher", "researcher"))
    ranking = engine.rank(QUESTION)
    most_similar = max(ranking, key=lambda g: g.similarity)  # floor always returns the most similar gem
    db.update_gem("demo", most_similar.gem_id, SYSTEM, coherence=0.0)  # fully decayed: its score is 0

    at = ask(app_as("researcher", REFLECTION), QUESTION)
    captions = texts(at.caption)
    assert "Scoring rule **floor**" in captions and "the minimum score applies to the similarity s" in captions
    [ranked] = ranked_frames(at)
    assert {"Similarity s", "Coherence c", "Coherence factor c^α", "Floor φ", "Resonance s·(φ + (1 − φ)·c^α)",
            "Interference", "Score", "Kept", "In prompt"} <= set(ranked.columns)
    assert "resonance r = s·c^α" not in ranked.columns and "lambda_" not in " ".join(ranked.columns)
    kept = ranked[ranked["Kept"] == "kept: most similar"]
    assert kept["gem"].tolist() == [most_similar.gem_id] and kept["rank"].tolist() == [len(ranked)]
    assert float(kept["Coherence c"].iloc[0]) == 0.0 and float(kept["Score"].iloc[0]) == 0.0
    assert (ranked["Floor φ"] == 0.0).all()
    assert "the most similar gem took the last slot" in captions
    [chart] = [c for c in charts(at) if chart_json(c)["layout"]["title"]["text"].startswith("Score of each")]
    spec = chart_json(chart)
    assert spec["layout"]["title"]["text"] == "Score of each ranked gem = Resonance s·(φ + (1 − φ)·c^α) + interference"
    assert any("(kept: most similar)" in label for label in spec["data"][0]["y"])


def test_weighted_scoring_shows_relevance_recency_and_importance(db):
    db.update_params("demo", seed_params(db, scoring="weighted", w_relevance=2.0), SYSTEM)
    at = ask(app_as("researcher", REFLECTION), QUESTION)
    assert "Scoring rule **weighted**" in texts(at.caption)
    [ranked] = ranked_frames(at)
    assert {"Similarity s", "Relevance", "Recency", "Importance", "Weighted score", "Interference", "Score",
            "Kept"} <= set(ranked.columns)
    assert ranked["Weighted score"].between(0, 1).all() and ranked["Relevance"].between(0, 1).all()


def test_nothing_resonates_under_product_names_decay_and_the_half_life(db):
    db.update_params("demo", seed_params(db), SYSTEM)  # product scoring: hard forgetting
    db.advance("demo", 48.0, SYSTEM)  # two days at a 42-minute half-life
    at = ask(app_as("researcher", REFLECTION), QUESTION)
    warning = texts(at.warning)
    assert "Nothing in lattice 'demo' resonates" in warning
    assert "gems match the question (similarity >= 0.05), but decay has brought their coherence" in warning
    assert "raise the half-life (now 42 min)" in warning and "switch the scoring rule to floor" in warning
    assert "reset the demo" in warning
    assert "decay alone can drop a gem" in texts(at.caption)  # the header says the rule forgets
    assert not ranked_frames(at) and not at.error
    assert "decay has brought their coherence" in texts(at.caption)  # the details tab says why it is empty
    assert len(db.list_reflections("demo")) == 1  # recorded, but nothing observed


def test_nothing_similar_says_so_even_under_floor(db):
    db.update_params("demo", seed_params(db, scoring="floor", min_score=0.99), SYSTEM)
    at = ask(app_as("researcher", REFLECTION), QUESTION)
    warning = texts(at.warning)
    assert "No gem is similar enough to the question (best similarity" in warning
    assert "< minimum 0.99): add gems on this topic, rephrase, or lower the minimum score." in warning
