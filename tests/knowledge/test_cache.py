"""Resonance cache: keys never serve a stale ranking; LRU evictions counted; thread-safe."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from core.knowledge import ResonanceCache, cache_key
from core.errors import LatticeError
from core.engine import LatticeParams

from tests.fakes import FakeClock


def test_key_changes_with_every_input():
    q = np.arange(8, dtype=np.float32)
    p = LatticeParams()
    base = cache_key(q, "demo", 3, p, "hashing-v1")
    assert base == cache_key(q.copy(), "demo", 3, LatticeParams(), "hashing-v1")  # deterministic
    variants = [
        cache_key(q + 1e-6, "demo", 3, p, "hashing-v1"),
        cache_key(q, "other", 3, p, "hashing-v1"),
        cache_key(q, "demo", 4, p, "hashing-v1"),
        cache_key(q, "demo", 3, p.replace(alpha=2.0), "hashing-v1"),
        cache_key(q, "demo", 3, p.replace(min_score=0.1), "hashing-v1"),
        cache_key(q, "demo", 3, p, "openai:text-embedding-3-small"),
        cache_key(q.astype(np.float64), "demo", 3, p, "hashing-v1"),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_version_bump_is_a_miss_not_a_stale_hit():
    cache = ResonanceCache()
    q = np.ones(4, dtype=np.float32)
    calls = []

    def compute(v):
        calls.append(v)
        return f"ranking@{v}"

    assert cache.get_or_compute(cache_key(q, "demo", 1, LatticeParams(), "h"), lambda: compute(1)) == "ranking@1"
    assert cache.get_or_compute(cache_key(q, "demo", 1, LatticeParams(), "h"), lambda: compute(1)) == "ranking@1"
    assert cache.get_or_compute(cache_key(q, "demo", 2, LatticeParams(), "h"), lambda: compute(2)) == "ranking@2"
    assert calls == [1, 2]
    s = cache.stats()
    assert (s.hits, s.misses, s.size) == (1, 2, 2)
    assert s.hit_ratio == pytest.approx(1 / 3)


def test_lru_evictions_counted_and_recency_respected():
    cache = ResonanceCache(maxsize=3)
    for k in "abc":
        cache.put(k, k.upper())
    assert cache.get("a") == "A"  # a is now most recent; b is the LRU
    cache.put("d", "D")
    assert "b" not in cache and "a" in cache
    cache.put("e", "E")
    assert "c" not in cache
    s = cache.stats()
    assert s.evictions == 2 and s.size == 3 and s.maxsize == 3
    cache.put("a", "A2")  # overwrite: no eviction
    assert cache.stats().evictions == 2


def test_history_is_a_time_series():
    clock = FakeClock(100.0)
    cache = ResonanceCache(maxsize=2, clock=clock, history=3)
    for i, key in enumerate(["x", "x", "y", "x"]):
        clock.advance(1.0)
        cache.get_or_compute(key, lambda: key * 2)
    hist = cache.history()
    assert len(hist) == 3  # bounded
    assert [h.time for h in hist] == [102.0, 103.0, 104.0]
    assert [(h.hits, h.misses) for h in hist] == [(1, 1), (1, 2), (2, 2)]
    df = cache.history_frame()
    assert list(df["hit_ratio"]) == pytest.approx([0.5, 1 / 3, 0.5])
    assert {"time", "hits", "misses", "evictions", "size"} <= set(df.columns)


def test_thread_safety_counts_add_up():
    cache = ResonanceCache(maxsize=50)
    n_threads, per_thread = 8, 400
    errors = []

    def worker(t):
        try:
            for i in range(per_thread):
                key = (t * 7 + i) % 120
                value = cache.get_or_compute(key, lambda: ("v", key))
                assert value == ("v", key)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s = cache.stats()
    assert s.hits + s.misses == n_threads * per_thread
    assert s.size == 50
    # new keys inserted = evictions + size, and only a miss can insert a new key
    assert 0 < s.evictions and s.evictions + s.size <= s.misses
    assert len(cache) == 50


def test_eviction_count_exact_for_a_known_sequence():
    cache = ResonanceCache(maxsize=10)
    for i in range(35):
        cache.get_or_compute(i, lambda: i)
    assert cache.stats().evictions == 25 and cache.stats().misses == 35


def test_bad_maxsize_and_none_value():
    with pytest.raises(LatticeError):
        ResonanceCache(maxsize=0)
    with pytest.raises(LatticeError):
        ResonanceCache().put("k", None)


def test_changing_the_scoring_rule_or_its_terms_is_a_miss():
    """The key hashes every parameter, so a ranking under one scoring rule is never served
    for another (issue 13: scoring, coherence floor and weights are lattice parameters)."""
    q = np.arange(8, dtype=np.float32)
    p = LatticeParams()
    keys = {cache_key(q, "demo", 3, p, "h")}
    for changed in (p.replace(scoring="floor"), p.replace(scoring="weighted"),
                    p.replace(scoring="floor", coherence_floor=0.5), p.replace(scoring="weighted", w_recency=2.0),
                    p.replace(scoring="weighted", w_importance=0.0), p.replace(scoring="weighted", w_relevance=3.0)):
        keys.add(cache_key(q, "demo", 3, changed, "h"))
    assert len(keys) == 7
    cache = ResonanceCache()
    cache.put(cache_key(q, "demo", 3, p, "h"), "product ranking")
    assert cache.get(cache_key(q, "demo", 3, p.replace(scoring="floor"), "h")) is None
    assert cache.stats().misses == 1
