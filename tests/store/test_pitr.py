"""Point-in-time recovery to a wall-clock time (issue 16, item 5): a base backup plus the WAL
archive, replayed to ``recovery_target_time`` into a new server, reproduces exactly the lattice
state exported at that time (core.store.pitr, ``python -m core pitr``).

The drill (slow) runs on the test's own clusters (tests/pgcluster.py); the refusals need no
server (a directory that looks like a base backup is enough to reach each check).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.access import SYSTEM
from core.errors import ValidationError
from core.store import RecoveryError, Store, prepare_pitr, wait_for_recovery
from tests.pgcluster import free_port, pg_clusters  # noqa: F401  (fixture)
from tests.store.conftest import RESEARCHER


def run_pitr_cli(*argv: str, capsys) -> dict:
    """``python -m core pitr ... --json`` through the command module's own parser."""
    from core.cli import pitr
    parser = argparse.ArgumentParser()
    pitr.register(parser.add_subparsers())
    args = parser.parse_args(["pitr", *argv, "--json"])
    assert args.handler(args) == 0
    return json.loads(capsys.readouterr().out)


def _wait_archived(archive: Path, segment: str, cluster, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not (archive / segment).exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"WAL segment {segment} not archived after {timeout_s} s\n{cluster.log_tail()}")
        time.sleep(0.05)


@pytest.mark.slow
def test_pitr_to_a_wall_clock_time_reproduces_the_lattice_exported_then(pg_clusters, sample_file, capsys):
    root, archive = pg_clusters.root, pg_clusters.archive
    primary = pg_clusters.primary()
    with Store.open(primary.url()) as store:
        store.import_path("lab", sample_file, SYSTEM)
        backup_s = pg_clusters.base_backup(primary, root / "base")
        # after the base backup and before T: changes only the archive has
        store.advance("lab", 2.5, RESEARCHER)
        store.observe("lab", ["g001", "g004"], RESEARCHER)
        store.add_gem("lab", RESEARCHER, "a gem written before T", id="before-t")
        store.entangle("lab", "g003", "before-t", 0.7, RESEARCHER)
        store.export("lab", root / "at-T.jsonl")
        version_at_t = store.version("lab")
        target = primary.sql("SELECT clock_timestamp()")[0][0]  # the server's clock stamps the commits
        # after T: changes the recovery must leave out
        store.advance("lab", 4.0, RESEARCHER)
        store.delete_gem("lab", "g002", RESEARCHER)
        store.add_gem("lab", RESEARCHER, "a gem written after T", id="after-t")
        store.create_lattice("later", RESEARCHER)
        store.export("lab", root / "final.jsonl")
        segment = primary.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]
        primary.sql("SELECT pg_switch_wal()")  # close the segment holding the last commits: it gets archived
        _wait_archived(archive, segment, primary)
    assert (root / "final.jsonl").read_bytes() != (root / "at-T.jsonl").read_bytes()  # T is a real choice
    primary.kill()  # the primary is lost: base backup and archive are all there is

    started = time.monotonic()
    port = free_port()
    plan_out = run_pitr_cli("--base", str(root / "base"), "--wal-archive", str(archive), "--target-time",
                            target.isoformat(), "--datadir", str(root / "recovered"), "--port", str(port),
                            capsys=capsys)
    assert plan_out["started"] is False and plan_out["start_command"][-1] == "start"
    assert plan_out["backup_started"] is not None  # read from backup_label: the target is checked against it
    recovered = pg_clusters.adopt("recovered", root / "recovered", port)
    result = wait_for_recovery(plan_out["datadir"], log=recovered.log)
    recovered.wait_for("SELECT NOT pg_is_in_recovery()")
    restore_s = time.monotonic() - started
    assert "recovery stopping before commit" in result.stopped

    with Store.open(recovered.url()) as back:
        assert back.lattice_names() == ["lab"] and back.version("lab") == version_at_t
        back.export("lab", root / "recovered.jsonl")
        assert (root / "recovered.jsonl").read_bytes() == (root / "at-T.jsonl").read_bytes()
        assert (root / "recovered.entanglements.csv").read_bytes() == (root / "at-T.entanglements.csv").read_bytes()
        back.add_gem("lab", RESEARCHER, "the recovered server takes writes")  # promoted: read-write
    print(f"\nPITR drill: base backup {backup_s:.2f} s; prepare + start + replay to T + promote {restore_s:.2f} s "
          f"(replay until promoted {result.seconds:.2f} s)")


@pytest.mark.slow
def test_a_target_past_the_archive_stops_with_the_servers_reason(pg_clusters, sample_file):
    root = pg_clusters.root
    primary = pg_clusters.primary()
    with Store.open(primary.url()) as store:
        store.import_path("lab", sample_file, SYSTEM)
    pg_clusters.base_backup(primary, root / "base")
    primary.kill()
    plan = prepare_pitr(root / "base", pg_clusters.archive, datetime.now(timezone.utc) + timedelta(hours=1),
                        root / "recovered", free_port())
    cluster = pg_clusters.adopt("recovered", plan.datadir, plan.port, wait=False)
    with pytest.raises(RecoveryError, match="stopped before finishing: .*recovery ended before configured "
                                            "recovery target was reached"):
        wait_for_recovery(plan.datadir, timeout_s=120, log=cluster.log)


# ------------------------------------------------------------------ refusals (no server needed)
def fake_base(path: Path, started: str = "2026-05-01 12:00:00 UTC") -> Path:
    path.mkdir()
    (path / "PG_VERSION").write_text("15\n")
    (path / "backup_label").write_text(f"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
                                       f"START TIME: {started}\n")
    (path / "postgresql.auto.conf").write_text("")
    return path


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    d = tmp_path / "wal"
    d.mkdir()
    (d / "000000010000000000000002").write_bytes(b"\0" * 16)
    return d


def test_prepare_writes_the_recovery_settings(tmp_path, archive):
    plan = prepare_pitr(fake_base(tmp_path / "base"), archive, "2026-05-01T14:30:00+02:00", tmp_path / "new", 5999)
    conf = (tmp_path / "new" / "postgresql.auto.conf").read_text()
    assert plan.target_time == datetime(2026, 5, 1, 12, 30, tzinfo=timezone.utc)
    assert "recovery_target_time = '2026-05-01 12:30:00+00:00'" in conf
    assert "recovery_target_action = 'promote'" in conf and "archive_mode = off" in conf
    assert f"restore_command = 'cp \"{archive.resolve()}/%f\" \"%p\"'" in conf and "port = 5999" in conf
    assert (tmp_path / "new" / "recovery.signal").exists() and (tmp_path / "new" / "PG_VERSION").exists()
    assert (tmp_path / "new").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("target, error, match", [
    ("2026-05-01T14:30:00", ValidationError, "no time zone"),
    ("yesterday", ValidationError, "not an ISO 8601 time"),
    ("2026-05-01T11:59:00+00:00", RecoveryError, "base backup started at 2026-05-01T12:00:00.*after the target"),
])
def test_a_bad_target_is_refused_before_anything_is_written(tmp_path, archive, target, error, match):
    with pytest.raises(error, match=match):
        prepare_pitr(fake_base(tmp_path / "base"), archive, target, tmp_path / "new", 5999)
    assert not (tmp_path / "new").exists()


def test_bad_directories_are_refused_before_anything_is_written(tmp_path, archive):
    base = fake_base(tmp_path / "base")
    with pytest.raises(RecoveryError, match="not a PostgreSQL base backup"):
        prepare_pitr(tmp_path, archive, "2026-05-02T00:00:00Z", tmp_path / "new", 5999)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecoveryError, match="WAL archive .* missing or empty"):
        prepare_pitr(base, tmp_path / "empty", "2026-05-02T00:00:00Z", tmp_path / "new", 5999)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "PG_VERSION").write_text("15\n")
    with pytest.raises(RecoveryError, match="exists and is not empty"):
        prepare_pitr(base, archive, "2026-05-02T00:00:00Z", tmp_path / "busy", 5999)
    with pytest.raises(ValidationError, match="port"):
        prepare_pitr(base, archive, "2026-05-02T00:00:00Z", tmp_path / "new", 70000)
    assert not (tmp_path / "new").exists() and (tmp_path / "busy" / "PG_VERSION").read_text() == "15\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is for root (CI runs as root)")
def test_start_as_root_is_refused_before_anything_is_written(tmp_path, archive):
    from core.cli import pitr
    from core.errors import LatticeError
    parser = argparse.ArgumentParser()
    pitr.register(parser.add_subparsers())
    args = parser.parse_args(["pitr", "--base", str(fake_base(tmp_path / "base")), "--wal-archive", str(archive),
                              "--target-time", "2026-05-02T00:00:00Z", "--datadir", str(tmp_path / "new"),
                              "--port", "5999", "--start"])
    with pytest.raises(LatticeError, match="refuses to run as root.*runuser -u postgres"):
        args.handler(args)
    assert not (tmp_path / "new").exists()
