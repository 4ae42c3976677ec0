"""``python -m core backup --schedule``: one slot with --once, flags refused where they do not
apply, and the long-running service for real (a subprocess stopped with SIGTERM; two of them
on one folder take each slot once)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.access import SYSTEM
from core.store import Store
from core.store.snapshot_catalog import SnapshotCatalog
from tests.conftest import ROOT


@pytest.fixture
def lab(db_url):
    store = Store.open(db_url)
    store.create_lattice("lab", SYSTEM)
    for k in range(4):
        store.add_gem("lab", SYSTEM, f"Gem {k} about clocks.", id=f"g{k}")
    store.close()
    return db_url


def test_once_takes_the_slot_and_a_second_run_has_nothing_to_do(cli, lab, tmp_path):
    code, out, err = cli("backup", "--schedule", "--once", "--every", "1d", "--lattice", "lab", "--dir",
                         str(tmp_path), "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(d["event"], d["target"], d["status"]) for d in lines] == [("snapshot", "lab", "ok")]
    assert (tmp_path / lines[0]["file"]).is_file() and lines[0]["gems"] == 4
    code, out, err = cli("backup", "--schedule", "--once", "--every", "1d", "--lattice", "lab", "--dir", str(tmp_path))
    assert code == 0 and "nothing to do" in out and "lab" in out


def test_once_exits_1_when_a_snapshot_fails(cli, lab, tmp_path):
    code, out, err = cli("backup", "--schedule", "--once", "--lattice", "lab", "missing", "--dir", str(tmp_path))
    assert code == 1
    assert "lab: snapshot verified" in out and "missing: snapshot FAILED" in out


@pytest.mark.parametrize("argv, message", [
    (["backup", "--lattice", "lab", "--out", "x.zip", "--every", "1h"], "--every belong to scheduled snapshots"),
    (["backup", "--lattice", "lab", "--out", "x.zip", "--all", "--keep-last", "3"], "--keep-last, --all belong"),
    (["backup", "--lattice", "lab"], "needs one --lattice NAME and --out"),
    (["backup", "--lattice", "a", "b", "--out", "x.zip"], "needs one --lattice NAME"),
    (["backup", "--schedule", "--once", "--out", "x.zip", "--lattice", "lab"], "--out is for a one-off backup"),
    (["backup", "--schedule", "--once"], "needs something to snapshot"),
    (["backup", "--schedule", "--once", "--all", "--lattice", "lab"], "not both"),
    (["backup", "--schedule", "--once", "--all", "--every", "0.01s"], "at least 0.1 s"),
    (["backup", "--schedule", "--once", "--all", "--keep-last", "0"], "keep_last"),
])
def test_misused_flags_are_refused_and_nothing_is_written(cli, lab, tmp_path, monkeypatch, argv, message):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("LATTICE_SNAPSHOT_DIR", str(work / "snapshots"))
    code, out, err = cli(*argv)
    assert code == 2 and message in err, err
    assert list(work.iterdir()) == []


def test_a_one_off_backup_still_works(cli, lab, tmp_path):
    out = cli.json("backup", "--lattice", "lab", "--out", str(tmp_path / "b.zip"))
    assert out["gems"] == 4 and (tmp_path / "b.zip").is_file()


# --------------------------------------------------------------- the service
def service(db_url: str, folder: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "LATTICE_DATABASE_URL": db_url}
    return subprocess.Popen([sys.executable, "-m", "core", "backup", "--schedule", "--every", "0.2s", "--lattice",
                             "lab", "--keep-last", "3", "--keep-daily", "0", "--dir", str(folder), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_lines(proc: subprocess.Popen, lines: list[str]) -> threading.Thread:
    """Collect stdout lines in the background (the test waits on the count, never on time)."""
    def read():
        for line in proc.stdout:
            lines.append(line)
    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def wait_for(lines: list[str], count: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while sum("snapshot verified" in line for line in lines) < count and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)


@pytest.mark.slow
def test_the_service_snapshots_rotates_and_stops_cleanly_on_sigterm(sqlite_url, tmp_path):
    with Store.open(sqlite_url) as store:
        store.create_lattice("lab", SYSTEM)
        store.add_gem("lab", SYSTEM, "A gem.", id="g0")
    proc = service(sqlite_url, tmp_path)
    lines: list[str] = []
    reader = read_lines(proc, lines)
    try:
        wait_for(lines, 5, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        reader.join(timeout=30)
    err = proc.stderr.read()
    assert code == 0, err
    assert "scheduled snapshots: lab every 0.2s" in err and "stopping (SIGTERM)" in err and "stopped" in err
    verified = [line for line in lines if "lab: snapshot verified" in line]
    assert len(verified) >= 5 and any("deleted" in line and "(retention)" in line for line in lines)
    entries = SnapshotCatalog(tmp_path).load().entries
    assert len(entries) == 3 and all(e.status == "ok" for e in entries)  # the last 3, nothing half-written
    on_disk = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.zip")}
    assert on_disk == {e.file for e in entries} and not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_two_services_on_one_folder_take_each_slot_once(sqlite_url, tmp_path):
    with Store.open(sqlite_url) as store:
        store.create_lattice("lab", SYSTEM)
        store.add_gem("lab", SYSTEM, "A gem.", id="g0")
    procs = [service(sqlite_url, tmp_path, "--keep-last", "1000") for _ in range(2)]
    outputs: list[list[str]] = [[], []]
    readers = [read_lines(p, out) for p, out in zip(procs, outputs)]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until both have taken a few slots
            if all(sum("snapshot verified" in line for line in out) >= 3 for out in outputs):
                break
            assert all(p.poll() is None for p in procs)
            time.sleep(0.05)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=120) for p in procs]
        for r in readers:
            r.join(timeout=30)
    assert codes == [0, 0]
    slots = [e.slot for e in SnapshotCatalog(tmp_path).load().entries]
    assert len(slots) >= 6 and len(slots) == len(set(slots))
