"""The Metrics page's replication panel and its reads from the read replica
(LATTICE_READ_DATABASE_URL, issue 16 item 2), on the test's own primary and standby."""
from __future__ import annotations

import pytest

from core.access import Actor
from tests.pgcluster import pg_clusters  # noqa: F401  (fixture)
from tests.ui.helpers import app_as, chart_json, charts, texts

METRICS = "pages/6_Metrics.py"


def metric(at, label: str) -> str:
    return next(str(m.value) for m in at.main.get("metric") if m.label == label)


def test_sqlite_shows_no_replication(monkeypatch):
    monkeypatch.delenv("LATTICE_READ_DATABASE_URL", raising=False)
    at = app_as("viewer", METRICS)
    assert not at.exception, at.exception
    assert "Replication: none (sqlite)" in texts(at.caption)


@pytest.mark.slow
def test_metrics_page_shows_the_lag_and_reads_from_the_replica(pg_clusters, monkeypatch):
    primary = pg_clusters.primary(sync_standby="standby1", synchronous_commit="remote_apply")
    standby = pg_clusters.standby(primary, "standby1")
    monkeypatch.setenv("LATTICE_DATABASE_URL", primary.url())
    monkeypatch.setenv("LATTICE_READ_DATABASE_URL", standby.url())
    at = app_as("researcher", "pages/4_Reflection.py")  # the demo lattice goes into the primary on first use
    at.chat_input(key="refl_input").set_value("What is decoherence?").run()
    assert not at.exception, at.exception
    at.switch_page(METRICS).run()
    assert not at.exception, at.exception
    assert metric(at, "Standbys") == "1" and metric(at, "Synchronous commit") == "on"
    [table] = [d.value for d in at.dataframe if "measured on" in d.value.columns]
    assert list(zip(table["standby"], table["measured on"], table["synchronous"])) == [
        ("standby1", "primary", "yes"), ("self", "standby", "—")]
    assert table["lag (bytes)"].tolist() == [0, 0]  # remote_apply: every acknowledged commit is replayed
    captions = texts(at.caption)
    assert "standby1 (sync, streaming)" in captions and "read replica: standby (receiving)" in captions
    # the stored figures come from the replica: the reflection written on the primary is there
    titles = [chart_json(c)["layout"]["title"]["text"] for c in charts(at)]
    assert "Reflection latency (1 reflections)" in titles or "Reflection latency (1 reflection)" in titles
    from ui.services import get_read_store
    replica = get_read_store()
    assert replica.url.endswith(f":{standby.port}/postgres") and len(replica.list_reflections("demo")) == 1
    with pytest.raises(Exception, match="read-only"):
        replica.add_gem("demo", Actor("researcher", "researcher"), "never written")
