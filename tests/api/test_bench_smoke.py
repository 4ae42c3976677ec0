"""The API benchmarks run end to end at a tiny size (nothing timed: the figures are only checked
for being there and consistent; benchmarks/api_search.py and api_load.py measure them)."""
from __future__ import annotations

import pytest

from benchmarks.api_load import api_load, load_table
from benchmarks.api_search import api_search, search_table


def test_api_search_runs_and_reports_every_figure():
    res = api_search(300, 12)
    assert res["gems"] == 300 and res["questions"] == 12
    for key in ("server_p50_ms", "server_p95_ms", "client_p50_ms", "client_p95_ms", "direct_p50_ms", "direct_p95_ms"):
        assert res[key] > 0, (key, res)
    assert res["server_p50_ms"] <= res["server_p95_ms"] and res["client_p50_ms"] <= res["client_p95_ms"]
    assert res["server_vs_direct_p95"] == pytest.approx(res["server_p95_ms"] / res["direct_p95_ms"])
    assert "API search over 300 gems" in search_table(res)


@pytest.mark.slow
@pytest.mark.postgres
def test_api_load_runs_both_phases_on_two_nodes(pg_url, redis_url):
    url, prefix = redis_url
    res = api_load(3, 1.0, db_url=pg_url, redis_url=url, prefix=prefix, gems=50, low_limit=5)
    assert res["nodes"] == 2 and res["requests"] > 0
    assert res["errors"] == 0, res["error_kinds"]
    assert res["writes_lost"] == 0 and res["writes_found"] == res["writes_acked"]
    assert len(res["served_per_node"]) == 2 and min(res["served_per_node"]) > 0  # both nodes served
    # the low limit: 15 requests alternating over both nodes, 5 granted in total, the other 10 refused
    assert res["limit_asked_per_node"] == [7, 8]
    assert res["limit_granted"] == 5 and res["limit_refused"] == 10 and res["limit_held"], res
    assert "writes acknowledged / found / lost" in load_table(res)
