"""Verified recovery (issue 16, item 4; core.store.recovery): the checks find what a failover or
restore can get wrong, a failed verification holds writes (nothing written) until it passes or
an admin overrides, every verification is audited, and the multi-host URL of a Patroni pair is
accepted. The real failover (a promoted standby seen by the gate) is the drill:
tests/reliability/test_failover_drill.py."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.access import SYSTEM, Actor, PermissionDenied, Role
from core.router import build_router
from core.service import Workbench, ensure_demo
from core.store import DatabaseUnavailable, Store, database_url
from core.store.recovery import (OK, READ_ONLY, RECOVERING, RecoveryInProgress, RecoveryReadOnly, recovery_status,
                                 verify_recovery)

from tests.patroni_cluster import free_port

RESEARCHER = Actor("ria", Role.RESEARCHER)


def _busy_lattice(store: Store, tmp_path) -> None:
    """A lattice that went through most kinds of change (each must verify as consistent)."""
    ensure_demo(store)
    store.advance("demo", 2.5, SYSTEM)
    "".join(Workbench(store, router=build_router("offline")).reflect("demo", "What is decoherence?", RESEARCHER))
    ids = list(store.list_gems("demo", page_size=5)[0]["id"])
    store.observe("demo", ids[:2], RESEARCHER)
    store.update_gem("demo", ids[0], RESEARCHER, content="Edited after the reflection.")
    store.entangle("demo", ids[1], ids[2], 0.5, RESEARCHER)
    store.disentangle("demo", ids[1], ids[2], RESEARCHER)
    store.archive_gem("demo", ids[3], SYSTEM)
    store.add_gem("demo", RESEARCHER, "a new gem", id="new")
    store.delete_gem("demo", "new", SYSTEM)
    store.backup("demo", tmp_path / "demo.zip", SYSTEM)
    store.advance("demo", 1.0, SYSTEM)
    store.restore(tmp_path / "demo.zip", SYSTEM, name="copy")
    store.set_clock("copy", "wall", SYSTEM)
    store.create_lattice("empty", SYSTEM)


def _sql(store: Store, statement: str, **params) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_a_consistent_database_verifies_and_is_audited(store, tmp_path):
    _busy_lattice(store, tmp_path)
    report = verify_recovery(store, reason="restore drill")
    assert report.ok and not report.warnings, report.summary()
    names = {(c.name, c.target) for c in report.checks}
    assert {("schema", ""), ("log", "demo"), ("log", "copy"), ("log", "empty"), ("snapshot", "demo")} <= names
    assert recovery_status(store).state == OK and recovery_status(store).report is report
    entry = store.audit_log(action="db.recovery", limit=1).iloc[0]
    assert entry["outcome"] == "ok" and entry["details"]["reason"] == "restore drill"
    assert entry["details"]["checks"] == len(report.checks)


@pytest.mark.parametrize("damage, check, words", [
    ("UPDATE lattices SET t = t + 0.5 WHERE name = 'demo'", "log", "lattice clock"),
    ("UPDATE lattices SET version = version - 3 WHERE name = 'demo'", "log", "changes were lost"),
    ("UPDATE snapshots SET lattice_version = lattice_version + 100", "snapshot", "acknowledged changes were lost"),
    ("UPDATE alembic_version SET version_num = '0001'", "schema", "code expects"),
], ids=["clock", "log-ahead", "snapshot-from-the-future", "schema"])
def test_damage_is_found_and_writes_are_held(store, tmp_path, damage, check, words):
    ensure_demo(store)
    store.advance("demo", 1.0, SYSTEM)
    store.backup("demo", tmp_path / "demo.zip", SYSTEM)
    _sql(store, damage)
    version = store.version("demo")

    report = verify_recovery(store, reason="after a restore")
    assert not report.ok, report.summary()
    found = [c for c in report.errors if c.name == check]  # a version rolled back also dates the backup
    assert found and words in found[0].detail, report.summary()
    status = recovery_status(store)
    assert status.state == READ_ONLY and not status.writable and words in status.message()
    assert store.audit_log(action="db.recovery", limit=1).iloc[0]["outcome"] == "failed"

    with pytest.raises(RecoveryReadOnly, match="nothing was written"):
        store.add_gem("demo", RESEARCHER, "refused while read-only")
    with pytest.raises(RecoveryReadOnly):
        store.save_run("demo", "r", {}, {}, RESEARCHER)  # a plain write transaction too
    assert store.version("demo") == version  # nothing written
    assert len(store.list_gems("demo")[0]) > 0  # reads go on

    with pytest.raises(PermissionDenied):
        store.recovery.override(store, RESEARCHER)
    store.recovery.override(store, SYSTEM, note="checked by hand")
    assert recovery_status(store).state == OK
    store.add_gem("demo", RESEARCHER, "accepted after the override")
    assert store.audit_log(action="db.recovery", limit=1).iloc[0]["details"]["override"] is True


def test_a_repaired_database_passes_again(store):
    ensure_demo(store)
    _sql(store, "UPDATE lattices SET t = t + 0.5 WHERE name = 'demo'")
    assert not verify_recovery(store).ok and recovery_status(store).state == READ_ONLY
    _sql(store, "UPDATE lattices SET t = t - 0.5 WHERE name = 'demo'")
    assert verify_recovery(store, reason="after the repair").ok
    assert recovery_status(store).state == OK
    store.add_gem("demo", RESEARCHER, "writes again")


@pytest.mark.parametrize("how", ["corrupted", "missing"])
def test_a_bad_snapshot_file_is_a_warning_not_a_stop(store, tmp_path, how):
    ensure_demo(store)
    path = tmp_path / "demo.zip"
    store.backup("demo", path, SYSTEM)
    if how == "corrupted":
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 3] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:
        path.unlink()
    report = verify_recovery(store)
    assert report.ok and [c.name for c in report.warnings] == ["snapshot"], report.summary()
    assert ("is gone" if how == "missing" else "damaged") in report.warnings[0].detail
    assert recovery_status(store).writable
    entry = store.audit_log(action="db.recovery", limit=1).iloc[0]
    assert entry["outcome"] == "ok" and entry["details"]["failed"][0]["severity"] == "warning"


def test_the_first_write_after_a_detected_recovery_verifies_first(store):
    ensure_demo(store)
    store.recovery.mark(RECOVERING, "failover: test")
    assert recovery_status(store).state == RECOVERING and not recovery_status(store).writable
    gid = store.add_gem("demo", RESEARCHER, "the first write after the failover")
    assert store.get_gem("demo", gid)["content"] == "the first write after the failover"
    status = recovery_status(store)
    assert status.state == OK and status.report.ok and status.report.reason == "failover: test"
    assert store.audit_log(action="db.recovery", limit=1).iloc[0]["details"]["reason"] == "failover: test"


def test_damage_found_by_the_first_write_refuses_it(store):
    ensure_demo(store)
    _sql(store, "UPDATE lattices SET version = version - 2 WHERE name = 'demo'")
    version = store.version("demo")
    store.recovery.mark(RECOVERING, "failover: test")
    with pytest.raises(RecoveryReadOnly):
        store.add_gem("demo", RESEARCHER, "refused")
    assert store.version("demo") == version and recovery_status(store).state == READ_ONLY


def test_other_writers_are_told_to_retry_while_one_verifies(store):
    ensure_demo(store)
    store.recovery.mark(RECOVERING, "failover: test")
    held = store.recovery._verifying  # another thread's verification in progress
    assert held.acquire(blocking=False)
    try:
        with pytest.raises(RecoveryInProgress, match="retry in a moment - nothing was written") as err:
            store.add_gem("demo", RESEARCHER, "while verifying")
        assert isinstance(err.value, DatabaseUnavailable)  # callers that retry on it keep working
    finally:
        held.release()
    done = []
    t = threading.Thread(target=lambda: done.append(store.add_gem("demo", RESEARCHER, "after")))
    t.start()
    t.join(30)
    assert done and recovery_status(store).state == OK


def test_status_as_the_health_endpoint_reports_it(store):
    ensure_demo(store)
    d = recovery_status(store).as_dict()
    assert d["state"] == "ok" and d["writable"] is True and d["message"] == "OK"
    store.recovery.mark(RECOVERING, "failover: test")
    d = recovery_status(store).as_dict()
    assert d["state"] == "recovering" and d["writable"] is False and "verifying" in d["message"]


def test_multi_host_urls_are_rewritten_for_sqlalchemy():
    assert database_url("postgresql://u:p@h1:5001,h2:5002/db?target_session_attrs=read-write") == (
        "postgresql+psycopg://u:p@/db?host=h1:5001&host=h2:5002&target_session_attrs=read-write")
    assert database_url("postgresql+psycopg://u@h1:1,h2:2/db") == "postgresql+psycopg://u@/db?host=h1:1&host=h2:2"
    assert database_url("postgresql+psycopg://u@h:5432/db?x=1") == "postgresql+psycopg://u@h:5432/db?x=1"
    assert database_url("sqlite:////tmp/a,b.db") == "sqlite:////tmp/a,b.db"


@pytest.mark.postgres
def test_a_multi_host_url_reaches_the_server_that_answers(pg_url):
    url = make_url(pg_url)
    dead = free_port()  # nothing listens there: libpq moves on to the next host
    query = "&".join(f"{k}={v}" for k, v in url.query.items())
    multi = (f"postgresql+psycopg://{url.username}@127.0.0.1:{dead},{url.host}:{url.port or 5432}/{url.database}"
             f"?target_session_attrs=read-write&{query}")
    store = Store.open(multi)
    try:
        store.create_lattice("multi", SYSTEM)
        store.add_gem("multi", RESEARCHER, "through the second host", id="g")
        assert store.get_gem("multi", "g")["content"] == "through the second host"
        assert recovery_status(store).server.endswith(f":{url.port or 5432}")
        assert verify_recovery(store).ok
    finally:
        store.close()
