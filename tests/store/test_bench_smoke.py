"""Smoke test of the store benchmarks (benchmarks/store.py) at a tiny size, SQLite only.

Checks that the benchmark functions run and report positive figures; no timing targets
are asserted (those are measured with ``python -m core bench --suite store``).
"""
from __future__ import annotations

from benchmarks import store as bench


def test_store_bench_functions_tiny(tmp_path):
    path = bench.make_gems_file(tmp_path / "gems.jsonl", 300)
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    imp = bench.bench_import(url, path, 300, 50)
    assert imp["gems"] == 300 and imp["naive_gems"] == 50
    for key in ("gems_per_s", "naive_gems_per_s", "ratio", "embed_only_gems_per_s"):
        assert imp[key] > 0, key
    ls = bench.bench_load_save(url)
    assert ls["gems"] == 300
    for key in ("load_s", "save_s", "advance_s"):
        assert ls[key] > 0, key


def test_store_bench_run_all_sqlite(capsys):
    results = bench.run_all(databases=("sqlite",), n=300, naive_n=50)
    assert [(r["name"], r["database"]) for r in results] == [("import", "sqlite"), ("load_save", "sqlite")]
    assert results[0]["gems_per_s"] > 0 and results[1]["load_s"] > 0
    out = capsys.readouterr().out
    assert "import" in out and "load_save" in out
