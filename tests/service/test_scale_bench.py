"""Smoke test of the scale suite's reflection row (benchmarks/scale.py) at a tiny size.

It runs the real path (a store, the Workbench with its lattice cache, the in-memory
engine) and checks the figures are there and the cache was used as designed; no timing
targets are asserted (those are measured with ``python -m core bench --suite scale``).
"""
from benchmarks.scale import reflection_workbench_vs_engine


def test_reflection_row_measures_warm_and_cold_through_the_cache():
    res = reflection_workbench_vs_engine("sqlite", 300, questions=6)
    assert res["n"] == 300 and res["embedder"] == "hashing-v1"
    for key in ("engine_p95_s", "workbench_p95_s", "ratio", "cold_s", "load_plus_embeddings_s", "cold_ratio"):
        assert res[key] > 0, key
    assert res["refreshes_applied"] == 6  # every warm question followed the last answer's write from the log
    assert res["cache_mb"] > 0
