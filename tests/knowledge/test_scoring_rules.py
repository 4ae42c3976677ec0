"""Scoring rules (issue 13, item 4): product stays the seed's bit for bit, floor and weighted
follow their formulas, the most similar gem is never dropped for age alone, batch = loop, and
an empty ranking says why."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine import Lattice, LatticeParams
from core.errors import ValidationError
from core.knowledge import batch_resonance, explain_empty, ranking_columns, rankings_frame, resonance
from tests.fakes import random_world
from tests.knowledge import frozen_resonance as frozen
from tests.knowledge.test_resonance import dyadic_world

SEED_FIELDS = list(frozen.RankedGem.__dataclass_fields__)
RANKING_FIELDS = list(frozen.Ranking.__dataclass_fields__)


def same_as_frozen(got, want) -> None:
    """Every field the seed's Ranking had, bit for bit; the new terms absent."""
    assert [getattr(got, f) for f in RANKING_FIELDS if f != "gems"] == \
        [getattr(want, f) for f in RANKING_FIELDS if f != "gems"]
    assert len(got.gems) == len(want.gems)
    for a, b in zip(got.gems, want.gems):
        assert [getattr(a, f) for f in SEED_FIELDS] == [getattr(b, f) for f in SEED_FIELDS]
        assert (a.relevance, a.recency, a.importance, a.floor, a.kept_as_most_similar) == (None, None, None, None,
                                                                                            False)
        assert a.to_dict() == b.to_dict()  # a seed record's gem dict is unchanged
    assert list(got.to_frame().columns) == list(want.to_frame().columns)


# ------------------------------------------------------------------ product = the seed, bit for bit
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), d=st.integers(2, 12), k=st.integers(1, 12), alpha=st.floats(0, 4),
       beta=st.floats(-3, 3), min_score=st.floats(0, 0.6), seed=st.integers(0, 2**16))
def test_property_product_is_the_seed_bit_for_bit(n, d, k, alpha, beta, min_score, seed):
    lat, vecs, rng = random_world(n, d=d, seed=seed)
    p = LatticeParams(alpha=alpha, beta=beta, k=k, min_score=min_score)
    assert p.scoring == "product"
    qs = rng.normal(size=(3, d)).astype(np.float32)
    for q in qs:
        same_as_frozen(resonance(q, vecs, lat, p), frozen.resonance(q, vecs, lat, p))
    for got, want in zip(batch_resonance(qs, vecs, lat, p), frozen.batch_resonance(qs, vecs, lat, p)):
        same_as_frozen(got, want)


@pytest.mark.parametrize("patterns", [4, None])
def test_product_batch_with_ties_is_the_seed_bit_for_bit(patterns):
    lat, vecs, qs = dyadic_world(3000, patterns, seed=2)
    for p in (LatticeParams(k=5, min_score=0.0), LatticeParams(k=40, beta=1.5, min_score=0.1),
              LatticeParams(k=3, alpha=2.0, min_score=0.5)):
        for got, want in zip(batch_resonance(qs, vecs, lat, p), frozen.batch_resonance(qs, vecs, lat, p)):
            same_as_frozen(got, want)


# ------------------------------------------------------------------ the formulas, the slow obvious way
def naive_scores(q, vecs, lat: Lattice, p: LatticeParams):
    """(similarity, score, eligible) per gem by the formulas of core/knowledge/scoring.py, in loops."""
    qn = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    sims = [max(0.0, float(np.dot(qn, vecs[i].astype(np.float64)))) for i in range(len(lat))]
    e = list(lat.energy)
    out = []
    for i, s in enumerate(sims):
        rec = lat.coherence[i] ** p.alpha
        if p.scoring == "product":
            out.append((s, s * rec, s * rec >= p.min_score))
        elif p.scoring == "floor":
            phi = p.coherence_floor
            out.append((s, s * (phi + (1 - phi) * rec), s >= p.min_score))
        else:
            rel = (s - min(sims)) / (max(sims) - min(sims)) if max(sims) > min(sims) else 1.0
            imp = (e[i] - min(e)) / (max(e) - min(e)) if max(e) > min(e) else 1.0
            w = p.w_relevance + p.w_recency + p.w_importance
            out.append((s, (p.w_relevance * rel + p.w_recency * rec + p.w_importance * imp) / w, s >= p.min_score))
    return out


@pytest.mark.parametrize("scoring", ["floor", "weighted"])
@pytest.mark.parametrize("alpha,k,min_score,phi,weights", [
    (1.0, 5, 0.05, 0.3, (1, 1, 1)), (2.0, 12, 0.0, 0.0, (2, 0.5, 0)), (0.5, 3, 0.2, 1.0, (0, 1, 3)),
    (1.0, 40, 0.1, 0.6, (1, 0, 0))])
def test_floor_and_weighted_follow_their_formula(scoring, alpha, k, min_score, phi, weights):
    lat, vecs, rng = random_world(120, d=16, seed=4)
    p = LatticeParams(scoring=scoring, alpha=alpha, k=k, min_score=min_score, coherence_floor=phi,
                      w_relevance=weights[0], w_recency=weights[1], w_importance=weights[2])
    for _ in range(4):
        q = rng.normal(size=16)
        got = resonance(q, vecs, lat, p)
        want = naive_scores(q, vecs, lat, p)
        eligible = sorted((-sc, i) for i, (s, sc, ok) in enumerate(want) if ok)
        assert got.n_similar == sum(ok for *_, ok in want) and got.scoring == scoring
        assert got.best_similarity == pytest.approx(max(s for s, *_ in want), abs=2e-6)
        top = [i for _, i in eligible[:k]]
        assert len(got) == min(k, len(eligible))
        kept = [g for g in got if g.kept_as_most_similar]
        # the chosen set: the top k by score, unless the most similar gem takes the last slot
        expect = set(top) if not kept else set(top[:-1]) | {kept[0].index}
        assert set(got.indices) == expect
        for g in got:
            s, sc, ok = want[g.index]
            assert ok and g.similarity == pytest.approx(s, abs=2e-6) and g.resonance == pytest.approx(sc, abs=2e-6)
            assert g.score == g.resonance + g.interference and 0.0 <= g.resonance <= 1.0
            assert g.coherence_factor == pytest.approx(lat.coherence[g.index] ** alpha, rel=1e-12)
            if scoring == "floor":
                assert g.floor == phi and g.relevance is None and g.importance is None
                assert set(g.to_dict()) >= {"floor", "kept_as_most_similar"} and "relevance" not in g.to_dict()
            else:
                assert g.floor is None and g.recency == pytest.approx(g.coherence_factor, rel=1e-12)
                assert 0.0 <= g.relevance <= 1.0 and 0.0 <= g.importance <= 1.0
                assert set(g.to_dict()) >= {"relevance", "recency", "importance", "kept_as_most_similar"}
        assert list(got.to_frame().columns) == ranking_columns(scoring)


def test_min_score_applies_to_similarity_under_floor_and_to_resonance_under_product():
    # gem a: most similar but decayed to c = 0.01; gem b: less similar, fresh
    vecs = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    lat = Lattice(coherence=[0.01, 1.0, 1.0], ids=["a", "b", "c"])
    q = np.array([1.0, 0.0])
    product = resonance(q, vecs, lat, LatticeParams(min_score=0.05, k=3))
    assert [g.gem_id for g in product] == ["b"]  # s·c = 0.01 < 0.05: decay alone dropped a
    assert product.n_similar == 2 and product.best_similarity == pytest.approx(1.0)
    floor = resonance(q, vecs, lat, LatticeParams(scoring="floor", coherence_floor=0.3, min_score=0.05, k=3))
    assert [g.gem_id for g in floor] == ["b", "a"]  # 0.8 vs 1·(0.3 + 0.7·0.01) = 0.307; c (s = 0) is out
    assert floor.gems[1].resonance == pytest.approx(0.3 + 0.7 * 0.01)
    assert not any(g.kept_as_most_similar for g in floor)  # a made it on its score


def test_the_most_similar_gem_takes_the_last_slot_and_is_flagged():
    # three fresh, fairly similar gems and one very similar gem that has fully decayed
    vecs = np.array([[0.9, 0.4359], [0.85, 0.5268], [0.8, 0.6], [1.0, 0.0]], dtype=np.float32)
    lat = Lattice(coherence=[1.0, 1.0, 1.0, 0.0], energy=[1.0, 1.0, 1.0, 1.0], ids=["x", "y", "z", "old"])
    q = np.array([1.0, 0.0])
    for p in (LatticeParams(scoring="floor", coherence_floor=0.2, k=2, min_score=0.05),
              LatticeParams(scoring="weighted", k=2, min_score=0.05)):
        ranking = resonance(q, vecs, lat, p)
        assert [g.gem_id for g in ranking] == ["x", "old"], p.scoring
        assert [g.kept_as_most_similar for g in ranking] == [False, True]
        assert ranking.gems[1].similarity == pytest.approx(1.0) and ranking.gems[1].resonance < \
            resonance(q, vecs, lat, p.replace(k=3)).gems[1].resonance  # y would have had the slot on score
        assert batch_resonance(q[None, :], vecs, lat, p) == [ranking]
    product = resonance(q, vecs, lat, LatticeParams(k=2, min_score=0.0))
    assert "old" not in [g.gem_id for g in product]  # hard forgetting: dropped for age alone


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 6), scoring=st.sampled_from(["floor", "weighted"]),
       phi=st.sampled_from([0.0, 0.1, 0.3, 1.0]), alpha=st.sampled_from([0.5, 1.0, 3.0]),
       min_score=st.sampled_from([0.0, 0.05, 0.3]), beta=st.sampled_from([0.0, 2.0, -2.0]),
       coherence=st.sampled_from(["random", "zero_best", "zeros"]), seed=st.integers(0, 2**16))
def test_property_the_most_similar_gem_is_never_dropped_for_age(n, k, scoring, phi, alpha, min_score, beta, coherence,
                                                                 seed):
    lat, vecs, rng = random_world(n, d=8, seed=seed)
    q = rng.normal(size=8).astype(np.float32)
    sims = np.maximum(vecs @ (q / np.linalg.norm(q)), 0.0)
    best = int(np.argmax(sims))
    c = lat.coherence.copy()
    if coherence == "zero_best":
        c[best] = 0.0  # the most similar gem has decayed completely
    elif coherence == "zeros":
        c[:] = 0.0
    lat = Lattice(energy=lat.energy, phase=lat.phase, coherence=c, uncertainty=lat.uncertainty, ids=lat.ids)
    p = LatticeParams(scoring=scoring, coherence_floor=phi, alpha=alpha, min_score=min_score, beta=beta, k=k)
    for ranking in (resonance(q, vecs, lat, p), batch_resonance(q[None, :], vecs, lat, p)[0]):
        if ranking.best_similarity >= min_score:
            top_sim = max(g.similarity for g in ranking)
            assert top_sim == pytest.approx(ranking.best_similarity, abs=1e-6)  # a most similar gem is returned
        assert sum(g.kept_as_most_similar for g in ranking) <= 1
        for g in ranking:
            assert g.similarity >= min_score and g.score == g.resonance + g.interference


def test_under_product_the_most_similar_gem_can_be_dropped():
    lat, vecs, rng = random_world(50, d=8, seed=1)
    q = rng.normal(size=8)
    sims = np.maximum(vecs @ (q / np.linalg.norm(q)), 0.0)
    c = np.ones(50)
    c[int(np.argmax(sims))] = 1e-3
    lat = Lattice(coherence=c, ids=lat.ids)
    ranking = resonance(q, vecs, lat, LatticeParams(k=3, min_score=0.0))
    assert int(np.argmax(sims)) not in ranking.indices and not any(g.kept_as_most_similar for g in ranking)


# ------------------------------------------------------------------ weighted: normalisation, weights
def test_weighted_normalises_over_the_lattice_and_scores_in_unit_interval():
    vecs = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    lat = Lattice(energy=[1.0, 3.0, 2.0], coherence=[0.5, 1.0, 0.25], ids=["a", "b", "c"])
    p = LatticeParams(scoring="weighted", w_relevance=2.0, w_recency=1.0, w_importance=1.0, min_score=0.0, k=3)
    by_id = {g.gem_id: g for g in resonance(np.array([1.0, 0.0]), vecs, lat, p)}
    assert by_id["a"].relevance == 1.0 and by_id["c"].relevance == 0.0
    assert by_id["b"].relevance == pytest.approx(0.6, abs=1e-6)
    assert (by_id["a"].importance, by_id["b"].importance, by_id["c"].importance) == (0.0, 1.0, 0.5)
    assert by_id["a"].resonance == pytest.approx((2 * 1 + 0.5 + 0) / 4)
    assert by_id["b"].resonance == pytest.approx((2 * 0.6 + 1 + 1) / 4, abs=1e-6)
    same = Lattice(energy=[2.0, 2.0, 2.0], coherence=[1.0, 1.0, 1.0], ids=["a", "b", "c"])
    flat = resonance(np.array([1.0, 0.0]), np.repeat(vecs[:1], 3, axis=0), same, p)
    assert all(g.importance == 1.0 and g.relevance == 1.0 and g.resonance == 1.0 for g in flat)  # all equal -> 1


def test_weighted_with_all_weights_zero_is_a_clear_error():
    lat, vecs, rng = random_world(10, d=4)
    p = LatticeParams(scoring="weighted", w_relevance=0, w_recency=0, w_importance=0)
    for call in (lambda: resonance(np.ones(4), vecs, lat, p), lambda: batch_resonance(np.ones((2, 4)), vecs, lat, p)):
        with pytest.raises(ValidationError, match="w_relevance, w_recency, w_importance.*raise one") as err:
            call()
        assert err.value.field == "w_relevance, w_recency, w_importance"
    assert len(resonance(np.ones(4), vecs, lat, p.replace(scoring="floor"))) > 0  # other rules ignore the weights


def test_interference_rerank_works_on_top_of_every_rule():
    vecs = np.array([[1, 0]] * 3, dtype=np.float32)
    lat = Lattice(phase=[0.0, 0.1, math.pi], coherence=[1.0, 0.99, 0.99], ids=["a", "b", "c"])
    for scoring in ("floor", "weighted"):
        p = LatticeParams(scoring=scoring, k=3, min_score=0.0)
        opposed = resonance(np.array([1.0, 0]), vecs, lat, p.replace(beta=-3.0))
        assert [g.gem_id for g in opposed] == ["a", "c", "b"]
        assert opposed.gems[1].interference > 0 and all(g.score == g.resonance + g.interference for g in opposed)
        boosted = resonance(np.array([1.0, 0]), vecs, lat, p.replace(beta=3.0))
        assert boosted.gems[1].interference > 0 > boosted.gems[2].interference


# ------------------------------------------------------------------ batch = loop under every rule
RULES = [dict(scoring="floor", coherence_floor=0.3), dict(scoring="floor", coherence_floor=0.0),
         dict(scoring="weighted"), dict(scoring="weighted", w_relevance=3, w_recency=0.5, w_importance=0)]


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("k,beta,min_score", [(5, 0.0, 0.0), (40, 1.5, 0.1), (3, -2.0, 0.5), (1, 0.0, 0.75)])
@pytest.mark.parametrize("patterns", [6, None])
def test_batch_equals_the_loop_exactly_under_floor_and_weighted(rule, k, beta, min_score, patterns):
    lat, vecs, qs = dyadic_world(3000, patterns, seed=1)
    p = LatticeParams(k=k, beta=beta, min_score=min_score, **rule)
    assert batch_resonance(qs, vecs, lat, p) == [resonance(q, vecs, lat, p) for q in qs]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 80), patterns=st.one_of(st.none(), st.integers(1, 6)), k=st.integers(1, 12),
       rule=st.sampled_from(RULES), beta=st.sampled_from([0.0, 1.0, -2.0]),
       min_score=st.sampled_from([0.0, 0.2, 0.5, 0.75]), seed=st.integers(0, 2**16))
def test_property_batch_equals_the_loop_under_floor_and_weighted(n, patterns, k, rule, beta, min_score, seed):
    lat, vecs, qs = dyadic_world(n, patterns, seed=seed)
    p = LatticeParams(k=k, beta=beta, min_score=min_score, **rule)
    assert batch_resonance(qs, vecs, lat, p) == [resonance(q, vecs, lat, p) for q in qs]


@pytest.mark.parametrize("rule", RULES)
def test_batch_matches_the_loop_on_random_lattices_under_floor_and_weighted(rule):
    lat, vecs, rng = random_world(4000, d=48, seed=3)
    vecs[1000:1400] = vecs[7]  # 400 identical gems
    p = LatticeParams(k=8, beta=0.5, min_score=0.1, **rule)
    qs = rng.normal(size=(20, 48)).astype(np.float32)
    qs[5] = vecs[7]
    for q, got in zip(qs, batch_resonance(qs, vecs, lat, p)):
        want = resonance(q, vecs, lat, p)
        assert got.indices == want.indices and got.n_similar == want.n_similar
        assert got.best_similarity == pytest.approx(want.best_similarity, abs=1e-6)
        for a, b in zip(got.gems, want.gems):
            assert a.resonance == pytest.approx(b.resonance, abs=1e-5)
            assert a.kept_as_most_similar == b.kept_as_most_similar
    assert batch_resonance(qs, vecs, lat, p, block_bytes=1) == batch_resonance(qs, vecs, lat, p)


def test_batch_with_few_similar_gems_widens_to_every_candidate():
    # min_score leaves fewer similar gems than k and the best scores belong to dissimilar gems:
    # the widened (exact) path must still find every similar gem
    rng = np.random.default_rng(0)
    lat, vecs, _ = random_world(2000, d=8, seed=9)
    q = rng.normal(size=8).astype(np.float32)
    sims = np.maximum(vecs @ (q / np.linalg.norm(q)), 0.0)
    threshold = float(np.sort(sims)[-4])  # four gems at or above it
    c = np.ones(2000)
    c[sims >= threshold] = 0.0  # the similar gems decayed, the rest are fresh
    lat = Lattice(coherence=c, ids=lat.ids)
    for rule in RULES:
        p = LatticeParams(k=10, min_score=threshold - 1e-4, **rule)
        [got] = batch_resonance(q[None, :], vecs, lat, p)
        want = resonance(q, vecs, lat, p)
        assert got.indices == want.indices and len(got) == 4 == got.n_similar


# ------------------------------------------------------------------ why a ranking is empty
def test_explain_empty_names_each_cause():
    seed = LatticeParams()
    empty = resonance(np.ones(4), np.zeros((0, 4), dtype=np.float32), Lattice(), seed)
    assert "no gems yet" in explain_empty(empty, seed)
    vecs = np.array([[1, 0], [0.96, 0.28], [0, 1]], dtype=np.float32)
    lat = Lattice(coherence=[0.01, 0.002, 0.5], ids=["a", "b", "c"])
    q = np.array([1.0, 0.0])
    decayed = resonance(q, vecs, lat, seed)
    assert len(decayed) == 0 and decayed.n_similar == 2
    text = explain_empty(decayed, seed)
    assert text.startswith("2 gems match the question (similarity >= 0.05), but decay has brought their coherence")
    assert "best resonance 0.01 < 0.05" in text and "raise the half-life (now 42 min)" in text
    assert "switch the scoring rule to floor" in text and "reset the demo" not in text
    assert "reset the demo (python -m core demo --reset)" in explain_empty(decayed, seed, "demo")
    one = resonance(q, vecs[:1], Lattice(coherence=[0.01], ids=["a"]), seed)
    assert explain_empty(one, seed).startswith("1 gem matches the question")
    frozen_lat = seed.replace(lambda_=0.0)
    assert "coherence is too low" in explain_empty(resonance(q, vecs, lat, frozen_lat), frozen_lat)
    strict = seed.replace(min_score=0.99)
    far = resonance(np.array([0.6, 0.8]), vecs, lat, strict)
    assert explain_empty(far, strict) == ("No gem is similar enough to the question (best similarity 0.800 < "
                                          "minimum 0.99): add gems on this topic, rephrase, or lower the minimum "
                                          "score.")
    floor = seed.replace(scoring="floor")
    assert len(resonance(q, vecs, lat, floor)) == 2  # the same decayed gems are returned under floor
    assert explain_empty(resonance(q, vecs, lat, floor), floor) == ""
    strict_floor = strict.replace(scoring="floor")
    assert "No gem is similar enough" in explain_empty(resonance(np.array([0.6, 0.8]), vecs, lat, strict_floor),
                                                       strict_floor)


def test_rankings_are_json_data_and_frames_carry_the_rule_terms():
    lat, vecs, rng = random_world(30, d=8)
    qs = rng.normal(size=(3, 8)).astype(np.float32)
    for scoring in ("product", "floor", "weighted"):
        batch = batch_resonance(qs, vecs, lat, LatticeParams(scoring=scoring, min_score=0.0))
        json.dumps([g.to_dict() for r in batch for g in r], allow_nan=False)  # records are stored as JSON
        df = rankings_frame(["a", "b", "c"], batch)
        assert list(df.columns) == ["query", "question", *ranking_columns(scoring)]
        assert list(rankings_frame([], []).columns) == ["query", "question", *ranking_columns()]
