"""The recovery state over the API (issue 16 item 4; core/api/routes/health.py): /v1/health and
/v1/ready report ok | recovering | read-only with the last verification, /v1/ready answers what a
load balancer needs (503 + Retry-After while recovering, 200 with writable false while
read-only), and writes refused by the recovery gate get stable JSON errors (409 read_only,
503 recovering) with nothing written.

A store is made read-only by damaging it as tests/store/test_recovery.py does (the lattice clock
moved away from its log, then a verification); ``recovering`` is the gate's state after it saw
another server (marked here; the real failover is tests/reliability/test_failover_drill.py).
"""
from __future__ import annotations

import httpx2
import pytest
from sqlalchemy import text

from core.store import verify_recovery

from tests.api.conftest import assert_error, version

GEM = {"content": "written while the gate is closed?"}
CLOCK_DAMAGE = "UPDATE lattices SET t = t + 0.5 WHERE name = 'demo'"
CLOCK_REPAIR = "UPDATE lattices SET t = t - 0.5 WHERE name = 'demo'"


def _sql(store, statement: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement))


def _gem_count(api) -> int:
    return api.store.list_gems("demo", page_size=1)[1]


def test_health_and_ready_report_ok(api_db):
    health = api_db.client.get("/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    recovery = health.json()["recovery"]
    assert recovery["state"] == "ok" and recovery["writable"] is True and recovery["message"] == "OK"
    ready = api_db.client.get("/v1/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["recovery"]["state"] == "ok"
    if api_db.store.engine.dialect.name == "postgresql":  # the gate names the server it reached
        assert ready.json()["recovery"]["server"].rsplit(":", 1)[1].isdigit()


def test_read_only_serves_reads_and_refuses_writes_with_409(api_db):
    _sql(api_db.store, CLOCK_DAMAGE)
    assert not verify_recovery(api_db.store, reason="after a restore").ok
    before, count = version(api_db), _gem_count(api_db)

    ready = api_db.client.get("/v1/ready")
    assert ready.status_code == 200, ready.text  # reads work: the node stays in rotation
    body = ready.json()
    assert body["status"] == "read-only" and body["recovery"]["state"] == "read-only"
    assert body["recovery"]["writable"] is False and "lattice clock" in body["recovery"]["message"]
    last = body["recovery"]["last_verification"]
    assert last["ok"] is False and last["reason"] == "after a restore"
    assert [(f["name"], f["target"], f["severity"]) for f in last["failed"]] == [("log", "demo", "error")]
    assert api_db.client.get("/v1/health").json()["recovery"]["state"] == "read-only"

    researcher = api_db.as_("researcher")
    err = assert_error(api_db.client.post("/v1/lattices/demo/gems", json=GEM, headers=researcher), 409, "read_only")
    assert "nothing was written" in err["message"] and "lattices repair" in err["message"]
    assert_error(api_db.client.post("/v1/lattices/demo/advance", json={"dt": 1.0}, headers=researcher),
                 409, "read_only")  # any write: the clock too
    assert version(api_db) == before and _gem_count(api_db) == count  # nothing written
    listed = api_db.client.get("/v1/lattices/demo/gems", headers=api_db.as_("viewer"))
    assert listed.status_code == 200 and listed.json()["total"] == count  # reads go on

    _sql(api_db.store, CLOCK_REPAIR)
    assert verify_recovery(api_db.store, reason="after the repair").ok
    ready = api_db.client.get("/v1/ready").json()
    assert ready["status"] == "ready" and ready["recovery"]["writable"] is True
    assert ready["recovery"]["last_verification"]["reason"] == "after the repair"
    assert api_db.client.post("/v1/lattices/demo/gems", json=GEM, headers=researcher).status_code == 201


def test_recovering_while_another_request_verifies_is_503_with_retry_after(api):
    api.store.recovery.mark("recovering", "failover: test")
    held = api.store.recovery._verifying  # another request's verification in progress
    assert held.acquire(blocking=False)
    try:
        r = api.client.get("/v1/ready")
        err = assert_error(r, 503, "recovering")
        assert r.headers["Retry-After"] == "1"
        assert err["recovery"]["state"] == "recovering" and err["recovery"]["reason"] == "failover: test"
        assert "verifying the database" in err["message"]
        health = api.client.get("/v1/health")  # alive all along: no restart for a verification
        assert health.status_code == 200 and health.json()["recovery"]["writable"] is False

        before, count = version(api), _gem_count(api)
        w = api.client.post("/v1/lattices/demo/gems", json=GEM, headers=api.as_("researcher"))
        assert "retry in a moment - nothing was written" in assert_error(w, 503, "recovering")["message"]
        assert w.headers["Retry-After"] == "1"
        assert version(api) == before and _gem_count(api) == count
    finally:
        held.release()
    w = api.client.post("/v1/lattices/demo/gems", json=GEM, headers=api.as_("researcher"))
    assert w.status_code == 201, w.text  # this write verified first, then went through
    ready = api.client.get("/v1/ready").json()
    assert ready["status"] == "ready" and ready["recovery"]["last_verification"]["reason"] == "failover: test"


def test_an_idle_node_is_verified_by_its_readiness_probe(api):
    # behind a balancer that sends traffic only to ready nodes, no write would ever come to verify
    api.store.recovery.mark("recovering", "failover: test")
    r = api.client.get("/v1/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready", r.text
    last = r.json()["recovery"]["last_verification"]
    assert last["ok"] is True and last["reason"] == "failover: test" and last["checks"] >= 2
    entry = api.store.audit_log(action="db.recovery", limit=1).iloc[0]
    assert entry["outcome"] == "ok" and entry["details"]["reason"] == "failover: test"


def test_damage_found_by_the_probe_makes_the_node_read_only(api):
    _sql(api.store, CLOCK_DAMAGE)
    api.store.recovery.mark("recovering", "failover: test")
    r = api.client.get("/v1/ready")
    assert r.status_code == 200 and r.json()["status"] == "read-only", r.text
    assert api.store.audit_log(action="db.recovery", limit=1).iloc[0]["outcome"] == "failed"
    assert_error(api.client.post("/v1/lattices/demo/gems", json=GEM, headers=api.as_("researcher")), 409, "read_only")


def test_states_over_real_http(live):
    url, api = live
    api.store.recovery.mark("recovering", "failover: test")
    held = api.store.recovery._verifying
    assert held.acquire(blocking=False)
    try:
        r = httpx2.get(f"{url}/v1/ready", timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "recovering"
    finally:
        held.release()
    r = httpx2.get(f"{url}/v1/ready", timeout=10)
    assert r.status_code == 200 and r.json()["recovery"]["state"] == "ok"


def test_the_schema_documents_the_recovery_state(api):
    schema = api.client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert "recovery" in components["Ready"]["required"] and "recovery" in components["Health"]["required"]
    assert components["RecoveryOut"]["properties"]["state"]["enum"] == ["ok", "recovering", "read-only"]
    assert "503" in schema["paths"]["/v1/ready"]["get"]["responses"]


@pytest.mark.parametrize("exc_name, status, code", [("RecoveryReadOnly", 409, "read_only"),
                                                    ("RecoveryInProgress", 503, "recovering")])
def test_the_error_table_maps_the_recovery_refusals(exc_name, status, code):
    import core.store as store_face
    from core.api.errors import classify
    assert classify(getattr(store_face, exc_name)("x")) == (status, code)
