"""``python -m core db verify``: the recovery verification from the command line (after putting back a
database backup or a point-in-time recovery), audited, exit 1 when a check fails."""
from __future__ import annotations

from sqlalchemy import text

from core.store import Store


def test_db_verify_passes_then_finds_lost_changes(cli, db_url):
    assert cli("demo")[0] == 0
    code, out, _ = cli("db", "verify")
    assert code == 0 and "recovery verification passed" in out
    assert cli.json("db", "verify", "--reason", "drill")["ok"] is True

    with Store.open(db_url) as store:  # the database now misses changes the log recorded
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE lattices SET version = version - 3 WHERE name = 'demo'"))
    code, out, _ = cli("db", "verify", "--reason", "restore of last night's file")
    assert code == 1
    assert "FAILED" in out and "changes were lost" in out
    with Store.open(db_url) as store:
        audits = store.audit_log(limit=5)
    rows = audits[audits["action"] == "db.recovery"]
    assert list(rows["details"].map(lambda d: d["reason"]))[:2] == ["restore of last night's file", "drill"]
