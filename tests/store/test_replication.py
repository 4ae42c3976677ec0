"""Streaming replication (issue 16, item 2): a standby fed by WAL streaming, synchronous commit,
a read-only Store on the replica (LATTICE_READ_DATABASE_URL) and the replication lag (core
function, Prometheus gauges).

The clusters are the test's own (tests/pgcluster.py: initdb + pg_basebackup on free ports);
the machine's server at 5432 is only used through ``db_url`` like every other store test.
"""
from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.access import SYSTEM
from core.monitoring import WorkbenchCollector
from core.store import ReadOnlyError, ReadOnlyStore, Store
from tests.pgcluster import pg_clusters  # noqa: F401  (fixture)
from tests.store.conftest import RESEARCHER


def _status_of(store: Store, name: str = "standby1"):
    return next((s for s in store.replication().standbys if s.name == name), None)


def _caught_up(primary_store: Store, name: str = "standby1") -> bool:
    s = _status_of(primary_store, name)
    return s is not None and s.state == "streaming" and s.lag_bytes == 0


def _wait(cluster, predicate, what: str, timeout_s: float = 60.0) -> None:
    """Poll ``predicate()`` until true (AssertionError with the server log after ``timeout_s``)."""
    import time
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached after {timeout_s} s\n{cluster.log_tail()}")
        time.sleep(0.05)


def _gauges(collector: WorkbenchCollector) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


# ------------------------------------------------------------------ read-only store (both databases)
def test_a_read_only_store_reads_everything_and_writes_nothing(store, db_url, sample_file):
    store.import_path("lab", sample_file, SYSTEM)
    version = store.version("lab")
    with ReadOnlyStore.open(db_url) as ro:
        assert ro.lattice_names() == ["lab"] and ro.version("lab") == version
        assert ro.load("lab").lattice.coherence.tolist() == store.load("lab").lattice.coherence.tolist()
        assert len(ro.transactions("lab")) == len(store.transactions("lab"))
        for write in (lambda: ro.add_gem("lab", RESEARCHER, "a new gem"),
                      lambda: ro.advance("lab", 1.0, RESEARCHER),
                      lambda: ro.create_lattice("other", RESEARCHER),
                      lambda: ro.audit(SYSTEM, "note")):
            with pytest.raises(ReadOnlyError, match="read-only .* nothing was written"):
                write()
        # behind the store's refusal, the database session itself refuses writes
        with pytest.raises(DBAPIError, match="(?i)read-only|readonly"):
            with ro.engine.begin() as conn:
                conn.execute(text("UPDATE lattices SET version = version + 1"))
    assert store.version("lab") == version and store.lattice_names() == ["lab"]


def test_a_read_only_store_never_migrates(tmp_path):
    from core.store import SchemaError
    with pytest.raises(SchemaError, match="not current"):
        ReadOnlyStore.open(f"sqlite:///{tmp_path / 'empty.db'}")


def test_sqlite_has_no_replication(sqlite_url):
    with Store.open(sqlite_url) as store:
        status = store.replication()
    assert (status.role, status.standbys, status.figures()) == ("none", (), [])
    assert status.summary() == "no replication (sqlite)"


def test_read_database_url_from_the_environment(monkeypatch):
    from core.store.db import read_database_url
    monkeypatch.delenv("LATTICE_READ_DATABASE_URL", raising=False)
    assert read_database_url() is None
    monkeypatch.setenv("LATTICE_READ_DATABASE_URL", "postgresql://reader@replica:5433/lattice")
    assert read_database_url() == "postgresql+psycopg://reader@replica:5433/lattice"


# ------------------------------------------------------------------ streaming standby
@pytest.mark.slow
def test_a_streaming_standby_serves_reads_and_reports_its_lag(pg_clusters, sample_file):
    primary = pg_clusters.primary()
    standby = pg_clusters.standby(primary, "standby1")
    with Store.open(primary.url()) as store:
        store.import_path("lab", sample_file, SYSTEM)
        _wait(primary, lambda: _caught_up(store), "standby caught up after the import")
        replica = ReadOnlyStore.open(standby.url())  # the schema replayed: a replica never migrates
        # what the primary committed, the replica serves (same version, same state, same file)
        assert replica.version("lab") == store.version("lab")
        store.export("lab", pg_clusters.root / "primary.jsonl")
        replica.export("lab", pg_clusters.root / "replica.jsonl")
        assert (pg_clusters.root / "primary.jsonl").read_bytes() == (pg_clusters.root / "replica.jsonl").read_bytes()

        seen = store.replication()
        assert seen.role == "primary" and not seen.synchronous
        [s] = seen.standbys
        assert (s.name, s.state, s.sync_state, s.lag_bytes) == ("standby1", "streaming", "async", 0)
        assert s.lag_seconds is not None and s.lag_seconds >= 0  # the last measured commit-to-replay time
        own = replica.replication()
        assert (own.role, own.receiving, own.lag_bytes, own.lag_seconds) == ("standby", True, 0, 0.0)
        with pytest.raises(ReadOnlyError):
            replica.add_gem("lab", RESEARCHER, "never written")

        # lag: replay paused on the standby, the primary writes; both vantage points see bytes behind
        standby.sql("SELECT pg_wal_replay_pause()")
        gem = store.add_gem("lab", RESEARCHER, "written while the standby does not replay")
        _wait(standby, lambda: (replica.replication().lag_bytes or 0) > 0, "received but not replayed")
        own = replica.replication()
        assert own.replay_paused and own.lag_seconds is not None and own.lag_seconds >= 0
        assert gem not in set(replica.gem_texts("lab")["id"])  # not replayed: not visible there
        _wait(primary, lambda: (_status_of(store).lag_bytes or 0) > 0, "the primary sees the standby behind")
        gauges = _gauges(WorkbenchCollector(replication=lambda: store.replication().figures()
                                            + replica.replication().figures()))
        on_primary = (("measured_on", "primary"), ("standby", "standby1"))
        assert gauges[("lattice_replication_lag_bytes", on_primary)] > 0
        assert gauges[("lattice_replication_synchronous", on_primary)] == 0
        assert gauges[("lattice_replication_lag_bytes", (("measured_on", "standby"), ("standby", "self")))] > 0
        assert gauges[("lattice_replication_standbys", ())] == 1
        assert "standby1 (async, streaming)" in store.replication().summary()

        standby.sql("SELECT pg_wal_replay_resume()")
        _wait(primary, lambda: _caught_up(store), "standby caught up after the resume")
        assert gem in set(replica.gem_texts("lab")["id"])
        assert replica.replication().lag_bytes == 0
        replica.close()


@pytest.mark.slow
def test_synchronous_commit_acknowledges_a_write_only_once_the_standby_has_it(pg_clusters, sample_file):
    """remote_apply: every acknowledged write is already visible on the standby; with the
    standby gone a write waits (not acknowledged) and completes once it is back."""
    primary = pg_clusters.primary(sync_standby="standby1", synchronous_commit="remote_apply")
    standby = pg_clusters.standby(primary, "standby1")
    # remote_apply: once Store.open (the migrations) returns, the standby has the schema
    with Store.open(primary.url()) as store, ReadOnlyStore.open(standby.url()) as replica:
        store.import_path("lab", sample_file, SYSTEM)
        status = store.replication()
        assert status.synchronous and status.synchronous_standby_names == "standby1"
        assert [s.sync_state for s in status.standbys] == ["sync"]
        for i in range(5):  # read-your-writes on the replica: no waiting between the ack and the read
            gem = store.add_gem("lab", RESEARCHER, f"acknowledged write {i}")
            assert replica.get_gem("lab", gem)["content"] == f"acknowledged write {i}"
            assert replica.version("lab") == store.version("lab")

        standby.kill()  # SIGKILL: the synchronous standby is gone
        done: dict[str, str] = {}
        writer = threading.Thread(target=lambda: done.update(gem=store.add_gem("lab", RESEARCHER, "waits")),
                                  daemon=True)
        writer.start()
        _wait(primary, lambda: primary.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")[0][0]
              == 1, "the commit waits for the synchronous standby")
        assert writer.is_alive() and "gem" not in done  # not acknowledged while only the primary has it
        assert "not connected" in store.replication().summary()

        standby.start()  # crash recovery, then streaming again: the waiting commit is released
        writer.join(timeout=120)
        assert not writer.is_alive() and replica.get_gem("lab", done["gem"])["content"] == "waits"
        assert len(replica.gem_texts("lab")) == len(store.gem_texts("lab")) == 12 + 5 + 1
