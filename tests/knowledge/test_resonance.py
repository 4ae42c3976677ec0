"""Resonance ranking: exact against the naive formula, batch = single, every term returned."""
from __future__ import annotations

import importlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.knowledge import HashingEmbedder, get_embedder
from core.knowledge import EmbedderMismatchError, RankedGem, batch_resonance, check_embedder, embed_queries, ranking_columns, rankings_frame, reembed, resonance, resonance_matrix
from core.errors import LatticeError
from core.engine import Lattice
from core.engine import LatticeParams

from tests.fakes import random_world


def naive_ranking(q, vecs, lat: Lattice, p: LatticeParams):
    """The formula of docs/architecture.md, written the slow obvious way (scalar loops)."""
    qn = q / np.linalg.norm(q)
    rows = []
    for i in range(len(lat)):
        g = vecs[i].astype(np.float64)
        cos = float(np.dot(qn, g) / (np.linalg.norm(g) * 1.0))
        s = max(0.0, cos)
        r = s * lat.coherence[i] ** p.alpha
        if r >= p.min_score:
            rows.append((r, i, s))
    rows.sort(key=lambda t: (-t[0], t[1]))
    top = rows[: p.k]
    if p.beta == 0 or len(top) < 2:
        return [(i, s, r, 0.0) for r, i, s in top]
    # greedy re-rank with the explicit interference formula
    out, remaining = [], list(top)
    while remaining:
        best = None
        for r, i, s in remaining:
            inter = sum(math.cos(lat.phase[i] - lat.phase[j]) * lat.coherence[i] * lat.coherence[j]
                        for j, *_ in out)
            total = r + p.beta * inter / p.k
            if best is None or total > best[0] + 1e-15:
                best = (total, r, i, s, p.beta * inter / p.k)
        total, r, i, s, term = best
        out.append((i, s, r, term))
        remaining = [t for t in remaining if t[1] != i]
    return out


@pytest.mark.parametrize("alpha,beta,k,min_score", [(1.0, 0.0, 5, 0.05), (2.5, 0.0, 17, 0.0),
                                                    (0.0, 0.0, 3, 0.1), (1.0, 1.5, 8, 0.02),
                                                    (0.7, -2.0, 10, 0.0)])
def test_resonance_matches_naive_formula(alpha, beta, k, min_score):
    lat, vecs, rng = random_world()
    p = LatticeParams(alpha=alpha, beta=beta, k=k, min_score=min_score)
    for _ in range(5):
        q = rng.normal(size=vecs.shape[1]).astype(np.float32)
        got = resonance(q, vecs, lat, p)
        want = naive_ranking(q.astype(np.float64), vecs, lat, p)
        assert [g.index for g in got.gems] == [w[0] for w in want]
        for g, (i, s, r, term) in zip(got.gems, want):
            assert g.similarity == pytest.approx(s, abs=2e-6)
            assert g.coherence_factor == pytest.approx(lat.coherence[i] ** alpha, rel=1e-12)
            assert g.resonance == pytest.approx(r, abs=2e-6)
            assert g.interference == pytest.approx(term, abs=1e-9)
            assert g.score == pytest.approx(g.resonance + g.interference, abs=1e-12)
            assert g.gem_id == lat.ids[i]
            assert g.uncertainty == lat.uncertainty[i]
        assert [g.rank for g in got.gems] == list(range(1, len(got) + 1))


def test_min_score_excludes_gems_and_best_is_reported():
    lat, vecs, rng = random_world(50)
    q = rng.normal(size=vecs.shape[1])
    sims, res = resonance_matrix(q, vecs, lat, lat.params)
    threshold = float(np.sort(res[0])[-3])  # exactly three gems at or above it
    ranking = resonance(q, vecs, lat, LatticeParams(min_score=min(threshold, 1.0), k=10))
    assert len(ranking) == 3
    assert all(g.resonance >= threshold for g in ranking)
    assert ranking.best_resonance == pytest.approx(res.max())
    empty = resonance(q, vecs, lat, LatticeParams(min_score=1.0))
    assert len(empty) == 0 and empty.best_resonance == pytest.approx(res.max())


def test_negative_similarity_clipped_and_coherence_weights():
    vecs = np.array([[1, 0], [-1, 0], [0.6, 0.8]], dtype=np.float32)
    lat = Lattice(coherence=[0.5, 1.0, 1.0], ids=["a", "b", "c"])
    ranking = resonance(np.array([1.0, 0.0]), vecs, lat, LatticeParams(min_score=0.0, k=3))
    by_id = {g.gem_id: g for g in ranking}
    assert by_id["a"].resonance == pytest.approx(0.5)  # s=1, c=0.5
    assert by_id["c"].resonance == pytest.approx(0.6)
    assert by_id["b"].similarity == 0.0 and by_id["b"].resonance == 0.0  # cos -1 clipped to 0
    assert [g.gem_id for g in ranking] == ["c", "a", "b"]


def test_interference_rerank_prefers_phase_aligned_gems():
    # three equally resonant gems; b is in phase with a, c is opposite to a
    vecs = np.array([[1, 0]] * 3, dtype=np.float32)
    lat = Lattice(phase=[0.0, 0.1, math.pi], coherence=[1.0, 0.99, 0.99], ids=["a", "b", "c"])
    plain = resonance(np.array([1.0, 0]), vecs, lat, LatticeParams(k=3, beta=0.0))
    assert [g.gem_id for g in plain] == ["a", "b", "c"]
    boosted = resonance(np.array([1.0, 0]), vecs, lat, LatticeParams(k=3, beta=3.0))
    assert [g.gem_id for g in boosted] == ["a", "b", "c"]
    assert boosted.gems[1].interference > 0 > boosted.gems[2].interference
    opposed = resonance(np.array([1.0, 0]), vecs, lat, LatticeParams(k=3, beta=-3.0))
    assert [g.gem_id for g in opposed] == ["a", "c", "b"]  # negative beta favours the opposite phase


def test_batch_equals_single_and_frame():
    lat, vecs, rng = random_world(200)
    p = LatticeParams(k=7, beta=0.8, min_score=0.01)
    qs = rng.normal(size=(6, vecs.shape[1])).astype(np.float32)
    batch = batch_resonance(qs, vecs, lat, p)
    assert len(batch) == 6
    for q, ranking in zip(qs, batch):
        single = resonance(q, vecs, lat, p)
        assert single.indices == ranking.indices
        for a, b in zip(single.gems, ranking.gems):
            assert a.score == pytest.approx(b.score, abs=1e-6)
            assert a.similarity == pytest.approx(b.similarity, abs=1e-6)
    df = rankings_frame([f"q{i}" for i in range(6)], batch)
    assert len(df) == sum(len(r) for r in batch)
    assert {"query", "question", "similarity", "coherence_factor", "interference", "score", "rank"} <= set(df)
    single = batch[0].to_frame()
    # a product (seed) ranking's frame has the seed's columns, none of the other rules' terms
    assert list(single.columns) == ranking_columns("product") == [
        f for f in RankedGem.__dataclass_fields__
        if f not in ("relevance", "recency", "importance", "floor", "kept_as_most_similar",
                     "bm25", "date_match", "fused")]
    assert isinstance(single, pd.DataFrame)


def test_dimension_mismatch_and_embedder_mismatch_are_clear_errors():
    lat, vecs, _ = random_world(10, d=16)
    with pytest.raises(EmbedderMismatchError, match="dimension 16"):
        resonance(np.ones(8), vecs, lat)
    with pytest.raises(EmbedderMismatchError, match="re-embed"):
        check_embedder(HashingEmbedder(64), "hashing-v1", 1024)
    check_embedder(HashingEmbedder(), "hashing-v1", 1024)  # the matching one passes


def test_reembed_reports_progress_and_matches_embedder():
    texts = [f"gem number {i} about topic {i % 3}" for i in range(10)]
    calls = []
    vecs = reembed(texts, HashingEmbedder(64), progress=lambda d, t: calls.append((d, t)), batch_size=4)
    assert vecs.shape == (10, 64) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert calls == [(0, 10), (4, 10), (8, 10), (10, 10)]
    np.testing.assert_array_equal(vecs, HashingEmbedder(64).embed(texts))
    np.testing.assert_array_equal(embed_queries(HashingEmbedder(64), texts[:3]), vecs[:3])


def test_registry_knows_the_extra_embedders():
    from core.knowledge import available_embedders

    names = available_embedders()
    assert "hashing-v1" in names and "openai:text-embedding-3-small" in names and "all-minilm-l6-v2" in names
    assert get_embedder("hashing-v1").dim == 1024


def test_bad_queries_and_empty_lattice():
    lat, vecs, _ = random_world(5, d=4)
    with pytest.raises(LatticeError, match="NaN"):
        resonance(np.array([np.nan, 0, 0, 0]), vecs, lat)
    with pytest.raises(LatticeError, match="re-embed"):
        resonance(np.ones(4), vecs[:3], lat)
    zero = resonance(np.zeros(4), vecs, lat, LatticeParams(min_score=0.0))
    assert all(g.similarity == 0.0 for g in zero)  # a zero query matches nothing, without NaN
    empty = resonance(np.ones(4), np.zeros((0, 4), dtype=np.float32), Lattice())
    assert len(empty) == 0 and empty.best_resonance == 0.0 and empty.to_frame().empty

@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 25), k=st.integers(1, 12), alpha=st.floats(0, 4), beta=st.floats(-3, 3),
       min_score=st.floats(0, 0.5), seed=st.integers(0, 2**16))
def test_property_resonance_equals_naive(n, k, alpha, beta, min_score, seed):
    lat, vecs, rng = random_world(n, d=6, seed=seed)
    p = LatticeParams(alpha=alpha, beta=beta, k=k, min_score=min_score)
    q = rng.normal(size=6)
    got = resonance(q, vecs, lat, p)
    want = naive_ranking(q, vecs, lat, p)
    assert len(got) == len(want) <= k
    assert all(g.resonance >= min_score for g in got)
    for g, (i, s, r, term) in zip(got.gems, want):
        assert g.resonance == pytest.approx(r, abs=1e-5)
        assert g.score == pytest.approx(r + term, abs=1e-5)
    # the set of gems is the top-k by resonance whatever beta does to the order
    assert sorted(got.indices) == sorted(w[0] for w in want)


# ------------------------------------------------------------------ batch in float32, in place
def dyadic_world(n: int, patterns: int | None, seed: int = 0):
    """A lattice whose similarities are exact in any arithmetic: gem rows have four entries
    +-0.5 (norm exactly 1), queries four entries +-1 (normalised to +-0.5), so every dot
    product is a multiple of 1/4 in float32 whatever BLAS does. ``patterns`` distinct rows
    repeated (many identical gems: ties) or all rows drawn afresh (None); coherence takes
    three values, so resonances tie too (and many are exactly 0)."""
    rng = np.random.default_rng(seed)

    def rows(m, value):
        out = np.zeros((m, 8), dtype=np.float32)
        for row in out:
            row[rng.choice(8, 4, replace=False)] = value * rng.choice([-1.0, 1.0], 4)
        return out

    vecs = rows(patterns or n, 0.5)
    if patterns:
        vecs = vecs[rng.integers(0, patterns, n)]
    lat = Lattice(energy=rng.uniform(0.5, 3, n), phase=rng.uniform(0, 2 * np.pi, n),
                  coherence=rng.choice([0.25, 0.5, 1.0], n), uncertainty=rng.uniform(0, 1, n),
                  ids=[f"g{i}" for i in range(n)])
    return lat, vecs, rows(12, 1.0)


@pytest.mark.parametrize("alpha,beta,k,min_score", [(1.0, 0.0, 5, 0.0), (2.0, 0.0, 40, 0.1), (1.0, 1.5, 8, 0.0),
                                                    (0.5, -2.0, 3, 0.3), (1.0, 0.0, 1, 0.9)])
@pytest.mark.parametrize("patterns", [6, None])
def test_batch_equals_the_loop_exactly_with_ties(alpha, beta, k, min_score, patterns, monkeypatch):
    # 6 patterns over 3000 gems: ~500 identical gems per pattern, ties far beyond the 2k + 16
    # candidates, so the widened (exact) path runs; the tie rule sends them to the lowest index
    module = importlib.import_module("core.knowledge.resonance")  # (the package's `resonance` is the function)
    calls = []
    rank_candidates = module._rank_candidates
    monkeypatch.setattr(module, "_rank_candidates", lambda *a: calls.append(a[5]) or rank_candidates(*a))
    lat, vecs, qs = dyadic_world(3000, patterns)
    p = LatticeParams(alpha=alpha, beta=beta, k=k, min_score=min_score)
    batch = batch_resonance(qs, vecs, lat, p)
    loop = [resonance(q, vecs, lat, p) for q in qs]
    assert batch == loop  # every term, bit for bit (the similarities are exact here)
    if patterns:
        assert any(floor is None for floor in calls)  # some query needed more than its candidates
    for ranking in batch:
        if beta == 0:
            keys = [(-g.resonance, g.index) for g in ranking]
            assert keys == sorted(keys)  # equal resonance: lower lattice index first


@pytest.mark.parametrize("alpha,beta,k,min_score", [(1.0, 0.0, 10, 0.0), (2.5, 0.0, 17, 0.05), (1.0, 1.5, 8, 0.02),
                                                    (0.7, -2.0, 10, 0.0), (1.0, 0.0, 5, 0.45)])
def test_batch_equals_the_loop_on_random_lattices(alpha, beta, k, min_score):
    lat, vecs, rng = random_world(4000, d=48, seed=3)
    vecs[1000:1400] = vecs[7]  # 400 identical gems (with their own coherences)
    p = LatticeParams(alpha=alpha, beta=beta, k=k, min_score=min_score)
    qs = rng.normal(size=(30, 48)).astype(np.float32)
    qs[5] = vecs[7]  # a query that matches the 401 identical gems
    batch = batch_resonance(qs, vecs, lat, p)
    assert len(batch) == len(qs)
    for q, got in zip(qs, batch):
        want = resonance(q, vecs, lat, p)
        assert got.indices == want.indices
        assert got.best_resonance == pytest.approx(want.best_resonance, abs=1e-6)
        for a, b in zip(got.gems, want.gems):
            assert a.similarity == pytest.approx(b.similarity, abs=1e-6)
            assert a.resonance == pytest.approx(b.resonance, abs=1e-6)
            assert a.interference == pytest.approx(b.interference, abs=1e-6)
            assert (a.coherence, a.coherence_factor, a.uncertainty, a.gem_id) == (
                b.coherence, b.coherence_factor, b.uncertainty, b.gem_id)
            assert a.score == a.resonance + a.interference
    if min_score == 0.45:
        assert any(len(r) < k for r in batch)  # min_score cut some rankings short


def test_batch_does_not_depend_on_blocks_or_company():
    lat, vecs, rng = random_world(3000, d=24, seed=5)
    p = LatticeParams(k=6, beta=0.5, min_score=0.0)
    qs = rng.normal(size=(9, 24)).astype(np.float32)
    whole = batch_resonance(qs, vecs, lat, p)
    assert batch_resonance(qs, vecs, lat, p, block_bytes=1) == whole  # one query per block
    assert batch_resonance(qs, vecs, lat, p, block_bytes=12 * 3000 * 4) == whole  # 4 rows fit: 3 even blocks of 3
    assert [batch_resonance(q, vecs, lat, p)[0] for q in qs] == whole  # Q = 1, one-dimensional query


def test_batch_edge_sizes_and_bad_queries():
    lat, vecs, rng = random_world(10, d=8)
    qs = rng.normal(size=(4, 8)).astype(np.float32)
    big_k = LatticeParams(k=50, min_score=0.0)  # k > N: every gem, ranked
    for q, got in zip(qs, batch_resonance(qs, vecs, lat, big_k)):
        assert len(got) == 10 and got.indices == resonance(q, vecs, lat, big_k).indices
    assert batch_resonance(np.zeros((0, 8), dtype=np.float32), vecs, lat) == []
    assert batch_resonance([], vecs, lat) == []
    one = batch_resonance(qs[:1], vecs, lat, big_k)
    assert len(one) == 1 and one[0].indices == resonance(qs[0], vecs, lat, big_k).indices
    zero = batch_resonance(np.zeros((2, 8)), vecs, lat, LatticeParams(k=3, min_score=0.0))
    assert [r.indices for r in zero] == [[0, 1, 2]] * 2  # nothing matches: ties at 0, lowest indices
    assert all(g.similarity == 0.0 for r in zero for g in r)
    bad = qs.copy()
    bad[2, 3] = np.nan
    with pytest.raises(LatticeError, match="NaN"):
        batch_resonance(bad, vecs, lat)
    with pytest.raises(EmbedderMismatchError, match="dimension 8"):
        batch_resonance(np.ones((2, 5)), vecs, lat)
    broken = vecs.copy()
    broken[4, 0] = np.inf
    with pytest.raises(LatticeError, match="re-embed"):
        batch_resonance(qs, broken, lat)
    empty = batch_resonance(qs, np.zeros((0, 8), dtype=np.float32), Lattice())
    assert [len(r) for r in empty] == [0] * 4 and all(r.best_resonance == 0.0 for r in empty)


def test_batch_peak_memory_has_no_float64_query_by_gem_array():
    """Peak traced memory at Q=50, N=20000 stays within 1.1x of the floor's: the float32
    (Q, N) scores plus the int64 (Q, N) indices a 2-D argpartition returns (12 bytes per
    score). One float64 (Q, N) array more (the old path made two, and a float32 copy) breaks it."""
    import tracemalloc

    q_count, n = 50, 20_000
    lat, vecs, rng = random_world(n, d=16, seed=7)
    qs = rng.normal(size=(q_count, 16)).astype(np.float32)
    p = LatticeParams(k=10, beta=0.5, min_score=0.0)
    batch_resonance(qs[:2], vecs, lat, p)  # first-call imports and caches outside the measurement
    tracemalloc.start()
    try:
        batch_resonance(qs, vecs, lat, p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    floor = (4 + 8) * q_count * n
    assert peak < 1.1 * floor, f"peak {peak / 1e6:.1f} MB, floor {floor / 1e6:.1f} MB"


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 80), patterns=st.one_of(st.none(), st.integers(1, 6)), k=st.integers(1, 12),
       alpha=st.sampled_from([0.0, 0.5, 1.0, 2.0]), beta=st.floats(-3, 3), min_score=st.sampled_from([0.0, 0.2, 0.5]),
       seed=st.integers(0, 2**16))
def test_property_batch_equals_the_loop(n, patterns, k, alpha, beta, min_score, seed):
    lat, vecs, qs = dyadic_world(n, patterns, seed=seed)
    p = LatticeParams(alpha=alpha, beta=beta, k=k, min_score=min_score)
    assert batch_resonance(qs, vecs, lat, p) == [resonance(q, vecs, lat, p) for q in qs]
