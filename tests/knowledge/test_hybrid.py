"""The hybrid retriever: BM25 fused with the similarity and the dates a question names, read by
the lattice's scoring rule in place of the similarity, every term shown."""
from datetime import datetime, timezone

import numpy as np
import pytest

from core.engine import Lattice, LatticeParams, preset_params
from core.errors import LatticeError
from core.knowledge import (HybridIndex, LexicalIndex, embed_in_batches, fuse, get_embedder, hybrid_resonance,
                            rank_similarities, resonance, similarities)
from core.knowledge.dates import date_match, named_dates
from core.knowledge.lexical import stem, tokens

TEXTS = ["Emily: I went to Xiamen and loved Gulangyu island.",
         "Emily: what do you think about that? Tell me what you think.",
         "Emily: my favourite painters are Raphael and Leonardo.",
         "Emily: I was upset today because of work."]
CREATED = [datetime(2023, 4, 27, 20, 1, tzinfo=timezone.utc), datetime(2023, 4, 28, 20, 1, tzinfo=timezone.utc),
           datetime(2023, 5, 2, 20, 1, tzinfo=timezone.utc), datetime(2023, 5, 2, 20, 2, tzinfo=timezone.utc)]


def test_tokens_drop_stop_words_and_stem_lightly():
    assert tokens("The movies I recommended, and painting classes") == ["movi", "i", "recommend", "paint", "class"]
    assert [stem(w) for w in ("movie", "story", "stories", "like", "liked", "is", "class")] == [
        "movi", "stori", "stori", "lik", "lik", "is", "class"]


def test_bm25_is_normalised_by_the_query_bound_and_independent_of_the_other_queries():
    idx = LexicalIndex(TEXTS)
    s = idx.scores(["Xiamen island", "painters", "zzz unknown"])
    assert s.shape == (3, 4) and (s >= 0).all() and (s <= 1).all()
    assert s[0].argmax() == 0 and s[1].argmax() == 2 and not s[2].any()
    assert np.array_equal(idx.scores(["painters"])[0], s[1])
    raw = idx.raw_scores(["painters"])[0]
    assert np.allclose(s[1] * idx.idf[idx.vocab["painter"]] * (idx.k1 + 1), raw)
    with pytest.raises(LatticeError, match="k1"):
        LexicalIndex(TEXTS, k1=0)


def test_dates_named_in_any_usual_form():
    assert named_dates("On May 2nd, what did we discuss?") == {(5, 2, None)}
    assert named_dates("the 27th of April, 2023 and 2023-05-04") == {(4, 27, 2023), (5, 4, 2023)}
    assert named_dates("Apr. 30 or 2 May") == {(4, 30, None), (5, 2, None)}
    assert named_dates("May I ask about April 31st?") == set()  # no such day; "May I" names none
    days = [c.date() for c in CREATED]
    assert date_match(["What upset me on May 2nd?", "no date"], days).tolist() == [[0, 0, 1, 1], [0, 0, 0, 0]]


def test_fusion_formula():
    sim, lex = np.array([[0.5, 0.2]]), np.array([[0.0, 1.0]])
    assert np.allclose(fuse(sim, lex, w_lexical=0.3), [[0.35, 0.44]])
    dates = np.array([[1.0, 0.0]])
    assert np.allclose(fuse(sim, lex, dates, 0.3, 0.5), [[0.675, 0.22]])
    assert np.array_equal(fuse(sim, lex, np.zeros((1, 2))), fuse(sim, lex))  # no date named: no change
    with pytest.raises(LatticeError, match="in \\[0, 1\\]"):
        fuse(sim, lex, w_lexical=2)


def lattice(params, coherence=None):
    n = len(TEXTS)
    lat = Lattice(np.ones(n), params=params, ids=[f"g{i}" for i in range(n)])
    if coherence is not None:
        lat.set_states(np.arange(n), coherence=np.asarray(coherence))
    return lat, embed_in_batches(get_embedder("hashing-v2"), TEXTS)


def test_hybrid_ranking_shows_every_term_and_the_rule_reads_the_fused_score():
    p = preset_params("memory").replace(k=4, min_score=0.0)
    lat, emb = lattice(p)
    idx = HybridIndex(TEXTS, CREATED)
    q_text = "What upset me on May 2nd?"
    q = get_embedder("hashing-v2").embed([q_text])[0]
    r = hybrid_resonance(q, q_text, emb, lat, idx)
    assert r.retriever == "hybrid"
    frame = r.to_frame()
    for col in ("similarity", "bm25", "date_match", "fused", "coherence_factor", "floor", "resonance", "score"):
        assert col in frame.columns
    assert [g.gem_id for g in r.gems[:2]] == ["g3", "g2"]  # both of May 2nd, the one that says "upset" first
    sims = similarities(q, emb, lat)[0]
    lex, dates = idx.terms([q_text])
    for g in r.gems:
        assert g.similarity == pytest.approx(sims[g.index])
        assert g.fused == pytest.approx(fuse(sims[None], lex, dates)[0, g.index])
        # floor rule on the fused score: fused * (phi + (1 - phi) c^alpha)
        assert g.resonance == pytest.approx(g.fused * (p.coherence_floor + (1 - p.coherence_floor)
                                                        * g.coherence_factor))
    # the similarity retriever's ranking has none of the hybrid columns
    plain = resonance(q, emb, lat)
    assert "bm25" not in plain.to_frame().columns and "bm25" not in plain.gems[0].to_dict()


def test_decay_still_reorders_under_the_hybrid():
    p = preset_params("memory").replace(k=2, min_score=0.0)
    q_text = "Xiamen island and painters Raphael"
    q = get_embedder("hashing-v2").embed([q_text])[0]
    idx = HybridIndex(TEXTS)
    lat, emb = lattice(p)
    fresh = hybrid_resonance(q, q_text, emb, lat, idx)
    lat_old, emb = lattice(p, coherence=[1.0, 1.0, 0.01, 1.0])  # the painters gem has faded
    faded = hybrid_resonance(q, q_text, emb, lat_old, idx)
    assert fresh.gems[0].gem_id == "g2" and faded.gems[0].gem_id == "g0"
    assert {g.gem_id for g in faded.gems} == {"g0", "g2"}  # floor: reordered, not erased


def test_rank_similarities_matches_resonance_and_checks_its_input():
    p = LatticeParams(k=3)
    lat, emb = lattice(p)
    q = get_embedder("hashing-v2").embed(["painters"])[0]
    a, b = resonance(q, emb, lat), rank_similarities(similarities(q, emb, lat)[0], lat)
    assert [g.to_dict() for g in a.gems] == [g.to_dict() for g in b.gems]
    with pytest.raises(LatticeError, match="similarities for a lattice"):
        rank_similarities(np.zeros(3), lat)
    with pytest.raises(LatticeError, match="rebuild it"):
        hybrid_resonance(q, "painters", emb, lat, HybridIndex(TEXTS[:2]))
