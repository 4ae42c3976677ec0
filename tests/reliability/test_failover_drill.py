"""The failover drill (issue 16): the primary PostgreSQL is lost, Patroni promotes the standby,
the workbench carries on by itself and loses no acknowledged write.

A Patroni pair with etcd (tests/patroni_cluster.py; ``synchronous_mode: on``) on free ports;
the Store is opened once with the multi-host URL (``target_session_attrs=read-write``).
``WRITERS`` threads (like sessions of one app process) each add one gem every ``INTERVAL``
seconds through that Store and count the acknowledged ones (``add_gem`` returned). The
primary's Patroni, postmaster and backends are killed with SIGKILL; the standby is promoted;
the writers retry through DatabaseUnavailable (nothing written by a refused call) and go on.
Beside them, an API node (tests/reliability/drill_api.py: its own Store and Workbench on the
same multi-host URL, served by uvicorn) takes ``POST /v1/lattices/drill/gems`` from a client
thread every ``API_INTERVAL`` seconds (201: acknowledged; 503: refused, not acknowledged), and
a probe reads its /v1/ready and /v1/health as a load balancer would. Then:

* every acknowledged gem, of the Store writers and of the API, is on the new primary (0 lost:
  commits waited for the standby); the API answered nothing but 201 and 503;
* each store (the app's, the API node's) saw the server change, verified the state before its
  first write there (schema, versions and clocks against the log, the snapshot's checksums)
  and audited it; the API's /v1/ready was 200 ``ready`` again after the promotion, reporting
  that verification;
* the time without writes (last acknowledged write before the kill to the first after), for
  the Store and for the API, is printed and written to test-artifacts/failover-drill.json.

Skips without etcd/Patroni (fails in CI with LATTICE_REQUIRE_PATRONI=1). About 45 s.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import pytest
from sqlalchemy import create_engine, text

from core.access import SYSTEM, Actor, Role
from core.errors import LatticeError
from core.store import DatabaseUnavailable, Store
from core.store.recovery import OK, recovery_status

from tests.patroni_cluster import PatroniCluster, require_patroni
from tests.reliability.drill_api import ApiNode, ApiWriter, ReadyProbe

pytestmark = pytest.mark.slow
WRITER = Actor("drill-writer", Role.RESEARCHER)
INTERVAL = 0.05  # seconds between one writer's writes
WRITERS = 3  # threads sharing the store: a steady ~60 writes/s in all
LATTICE = "drill"
API_INTERVAL = 0.05  # seconds between the API client's requests (~20 writes/s when answered at once)
PROBE_INTERVAL = 0.2  # seconds between readiness probes


@dataclass
class Writer:
    """Adds gems ``<prefix>000001``, ``<prefix>000002``... at a steady rate; records what was acknowledged."""

    store: Store
    prefix: str = "w"
    acked: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, gem id)
    refused: list[str] = field(default_factory=list)  # DatabaseUnavailable messages (retried)
    other: list[str] = field(default_factory=list)  # any other error: the drill fails on it
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            gid = f"{self.prefix}{n:06d}"  # a refused write's id is not reused: its outcome is unknown
            try:
                self.store.add_gem(LATTICE, WRITER, f"drill write {n}", id=gid)
                self.acked.append((time.monotonic(), gid))
            except DatabaseUnavailable as exc:
                self.refused.append(str(exc))
            except LatticeError as exc:
                self.other.append(f"{type(exc).__name__}: {exc}")
            self.stop.wait(INTERVAL)

    def acked_after(self, t: float) -> int:
        return sum(1 for when, _ in self.acked if when > t)


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def test_primary_killed_standby_promoted_no_acknowledged_write_lost(tmp_path, artifacts_dir):
    require_patroni()
    with PatroniCluster() as cluster:
        store = Store.open(cluster.url)
        node = None
        try:
            store.create_lattice(LATTICE, SYSTEM)
            store.add_gem(LATTICE, SYSTEM, "before the backup", id="seed")
            store.backup(LATTICE, tmp_path, SYSTEM)  # its checksums are part of the verification
            node = ApiNode.start(cluster.url)
            stop = threading.Event()
            writers = [Writer(store, prefix=f"w{k}-", stop=stop) for k in range(WRITERS)]
            api = ApiWriter(node, LATTICE, API_INTERVAL, stop=stop)
            probe = ReadyProbe(node, PROBE_INTERVAL, stop=stop)
            threads = [threading.Thread(target=w.run, name=f"drill-writer-{k}", daemon=True)
                       for k, w in enumerate(writers)]
            threads += [threading.Thread(target=api.run, name="drill-api-client", daemon=True),
                        threading.Thread(target=probe.run, name="drill-ready-probe", daemon=True)]
            for t in threads:
                t.start()
            try:
                _wait(lambda: all(len(w.acked) >= 30 for w in writers) and len(api.acked) >= 30, 30,
                      "30 acknowledged writes per writer and through the API")
                old = cluster.leader()
                killed_at = time.monotonic()
                cluster.kill(old)
                new = cluster.wait_leader(exclude=old, timeout=60)
                promoted_at = time.monotonic()
                _wait(lambda: all(w.acked_after(killed_at) >= 30 for w in writers)
                      and api.acked_after(killed_at) >= 30
                      and probe.summary(killed_at)["seconds_kill_to_ready"] is not None, 30,
                      "30 acknowledged writes per writer and through the API after the promotion, and /v1/ready")
            finally:
                stop.set()
                for t in threads:
                    t.join(timeout=30)
            status = recovery_status(store)
            api_status = recovery_status(node.store)
            audit = store.audit_log(action="db.recovery", limit=10)
        finally:
            if node is not None:
                node.close()
            store.close()

        # 0 acknowledged writes lost: read back on the new primary, directly (not via the URL list)
        engine = create_engine(cluster.node_url(new))
        with engine.connect() as conn:
            on_new = set(conn.execute(text("SELECT g.gem_id FROM gems g JOIN lattices l ON l.id = g.lattice_id "
                                           "WHERE l.name = :n"), {"n": LATTICE}).scalars())
            in_recovery = conn.execute(text("SELECT pg_is_in_recovery()")).scalar()
        engine.dispose()

    acked = sorted(a for w in writers for a in w.acked)
    refused = [r for w in writers for r in w.refused]
    other = [o for w in writers for o in w.other]
    acked_ids = [gid for _, gid in acked]
    lost = sorted(set(acked_ids) - on_new)
    before = [when for when, _ in acked if when <= killed_at]
    after = [when for when, _ in acked if when > killed_at]
    gap = after[0] - before[-1]
    api_ids = [gid for _, gid in api.acked]
    api_lost = sorted(set(api_ids) - on_new)
    api_before = [when for when, _ in api.acked if when <= killed_at]
    api_after = [when for when, _ in api.acked if when > killed_at]
    api_figures = {"acknowledged": len(api_ids), "lost": len(api_lost), "refused_503": dict(api.refused),
                   "unanswered": len(api.unanswered), "other_answers": len(api.other),
                   "seconds_without_writes": round(api_after[0] - api_before[-1], 2),
                   "seconds_kill_to_first_write": round(api_after[0] - killed_at, 2),
                   "verification_seconds": api_status.report.seconds if api_status.report else None,
                   "verification_reason": api_status.reason, "write_interval_s": API_INTERVAL,
                   "ready_probe": {**probe.summary(killed_at), "interval_s": PROBE_INTERVAL}}
    figures = {"acknowledged": len(acked_ids), "lost": len(lost), "refused_and_retried": len(refused),
               "refused_while_verifying": sum("verifying" in r for r in refused),
               "other_errors": len(other), "seconds_without_writes": round(gap, 2),
               "seconds_kill_to_promotion": round(promoted_at - killed_at, 2),
               "seconds_kill_to_first_write": round(after[0] - killed_at, 2),
               "verification_seconds": status.report.seconds if status.report else None,
               "verification_reason": status.reason, "old_primary": old.name, "new_primary": new.name,
               "writers": WRITERS, "write_interval_s": INTERVAL, "api": api_figures}
    print("\nfailover drill:", json.dumps(figures, indent=2))
    (artifacts_dir / "failover-drill.json").write_text(json.dumps(figures, indent=2) + "\n")

    assert not lost, f"acknowledged writes missing on the new primary: {lost[:10]}"
    assert not other, f"errors other than DatabaseUnavailable: {other[:3]}"
    assert refused, "the kill should have refused some writes (was the primary really killed?)"
    assert not in_recovery and new is not old
    # the store noticed the new server and verified the state before writing there
    assert status.state == OK and status.report is not None and status.report.ok, status.message()
    assert "failover" in status.reason and str(new.pg_port) in status.reason
    assert {c.name for c in status.report.checks} >= {"schema", "log", "snapshot"}
    assert all(c.ok for c in status.report.checks), status.report.summary()
    assert len(audit) >= 1 and audit.iloc[0]["outcome"] == "ok" and "failover" in audit.iloc[0]["details"]["reason"]

    # the API: nothing acknowledged was lost, nothing but 201 and 503 was answered, its own
    # store verified the new server, and /v1/ready said so once writes were accepted again
    assert not api_lost, f"acknowledged API writes missing on the new primary: {api_lost[:10]}"
    assert not api.other, f"API answers other than 201 and 503: {api.other[:3]}"
    assert api_status.state == OK and api_status.report is not None and api_status.report.ok, api_status.message()
    assert "failover" in api_status.reason and str(new.pg_port) in api_status.reason
    failovers = audit[audit["details"].map(lambda d: "failover" in d.get("reason", ""))]
    assert len(failovers) >= 2 and set(failovers["outcome"]) == {"ok"}  # the app's store and the API node's
    last = probe.last_ready["recovery"]
    assert probe.last_ready["status"] == "ready" and last["state"] == "ok" and last["writable"] is True
    assert last["server"].endswith(f":{new.pg_port}") and "failover" in last["last_verification"]["reason"]
