"""SIGKILL in the middle of a large import, a snapshot, a restore and a key rotation, on
SQLite and PostgreSQL: afterwards the database is consistent, nothing partial is visible,
and rerunning the same command completes.

The commands run as real ``python -m core`` processes. ``LATTICE_FAULT_PAUSE=<point>:<n>``
(core.store.faults, a test-only hook) makes the process stop at a known point inside
the operation (after its n-th batch) and signal it through a marker file; the test then
kills it with SIGKILL, which no code can intercept.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.access import SYSTEM
from core.store import Store
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
BIG = 2500  # gems: three insert batches of 1000
FAULTS: list[str] = []  # for the report


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATTICE_FAULT")}
    env.update(LATTICE_DATABASE_URL=url, PYTHONUNBUFFERED="1", **extra)
    return env


def run_core(url: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=_env(url, **env),
                          capture_output=True, text=True, timeout=180)


def kill_at(url: str, point: str, tmp: Path, *args: str, **env: str) -> str:
    """Run ``python -m core *args``, SIGKILL it when it reaches ``point``; return the point."""
    marker = tmp / f"paused-{point}"
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "core", *args], cwd=ROOT,
                            env=_env(url, LATTICE_FAULT_PAUSE=point, LATTICE_FAULT_FILE=str(marker), **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the command ended before {point}: {proc.returncode} {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the command never reached {point}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    FAULTS.append(point)
    return marker.read_text()


def big_file(tmp: Path) -> Path:
    path = tmp / "big.jsonl"
    words = ["wave", "decay", "memory", "phase", "clock", "lattice", "gem", "signal"]
    with path.open("w") as f:
        for i in range(BIG):
            f.write(json.dumps({"id": f"b{i:05d}", "title": f"Big {i}",
                                "content": f"Gem {i}: {words[i % 8]} and {words[(i * 3) % 8]} number {i}.",
                                "coherence": 0.2 + (i % 8) / 10}) + "\n")
    return path


def small_file(tmp: Path) -> Path:
    path = tmp / "small.jsonl"
    path.write_text("".join(json.dumps({"id": f"s{i}", "content": f"small gem {i}"}) + "\n" for i in range(12)))
    return path


def state(url: str, tmp: Path, name: str = "lab") -> tuple:
    """Everything visible about lattice ``name``: its export, version, t, log length, gem count."""
    with Store.open(url) as s:
        if not s.exists(name):
            return ("absent", len(s.list_lattices()))
        out = tmp / f"export-{name}-{time.monotonic_ns()}.jsonl"
        s.export(name, out, include_archived=True)
        info = s.info(name)
        return (out.read_text(), info.version, info.t, len(s.transactions(name)), info.gems, len(s.snapshots()))


@pytest.fixture
def lab(db_url, tmp_path):
    assert run_core(db_url, "import", str(small_file(tmp_path)), "--lattice", "lab").returncode == 0
    return db_url


def test_killed_import_leaves_nothing_and_rerun_completes(lab, tmp_path):
    src = big_file(tmp_path)
    before = state(lab, tmp_path)
    # into an existing lattice, and as a new lattice
    assert kill_at(lab, "import.batch:2", tmp_path, "import", str(src), "--lattice", "lab").startswith("import.batch:2")
    kill_at(lab, "import.batch:2", tmp_path, "import", str(src), "--lattice", "fresh")
    assert state(lab, tmp_path) == before  # not one of the 2000 inserted rows is visible
    assert state(lab, tmp_path, "fresh") == ("absent", 1)
    done = run_core(lab, "import", str(src), "--lattice", "lab", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["imported"] == BIG
    with Store.open(lab) as s:
        imports = s.transactions("lab", kinds=["import"])  # one entry per batch, one lattice version per import
        assert s.info("lab").gems == 12 + BIG and imports["lattice_version"].nunique() == 2


def test_killed_backup_leaves_no_snapshot_and_rerun_completes(lab, tmp_path):
    assert run_core(lab, "import", str(big_file(tmp_path)), "--lattice", "lab").returncode == 0
    before = state(lab, tmp_path)
    out = tmp_path / "snap.zip"
    kill_at(lab, "backup.member:2", tmp_path, "backup", "--lattice", "lab", "--out", str(out))
    assert not out.exists()  # only the hidden temporary file may remain
    assert state(lab, tmp_path) == before
    done = run_core(lab, "backup", "--lattice", "lab", "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr and out.exists()
    assert json.loads(done.stdout)["gems"] == 12 + BIG


def test_killed_restore_changes_nothing_and_rerun_restores(lab, tmp_path):
    assert run_core(lab, "import", str(big_file(tmp_path)), "--lattice", "lab").returncode == 0
    snap = tmp_path / "snap.zip"
    assert run_core(lab, "backup", "--lattice", "lab", "--out", str(snap)).returncode == 0
    at_backup = state(lab, tmp_path)[0]
    with Store.open(lab) as s:  # diverge from the snapshot
        s.advance("lab", 2.5, SYSTEM)
        s.delete_gem("lab", "b00007", SYSTEM)
    diverged = state(lab, tmp_path)
    kill_at(lab, "restore.batch:2", tmp_path, "restore", str(snap), "--force")
    assert state(lab, tmp_path) == diverged  # the old state, whole
    done = run_core(lab, "restore", str(snap), "--force")
    assert done.returncode == 0, done.stderr
    assert state(lab, tmp_path)[0] == at_backup


def test_killed_key_rotation_keeps_everything_readable_and_rerun_completes(lab, tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    assert run_core(lab, "import", str(big_file(tmp_path)), "--lattice", "lab",
                    LATTICE_ENCRYPTION_KEYS=old).returncode == 0
    both = f"{new},{old}"
    kill_at(lab, "rotate.batch:3", tmp_path, "keys", "rotate", "--batch-size", "500", LATTICE_ENCRYPTION_KEYS=both)
    with Store.open(lab, keys=[new, old]) as s:
        status = s.encryption_status()
        assert status["current_key"] == 1500 and status["older_key"] + status["plaintext"] == BIG + 12 - 1500
        out = tmp_path / "mid.jsonl"
        s.export("lab", out, include_archived=True)
    done = run_core(lab, "keys", "rotate", "--json", LATTICE_ENCRYPTION_KEYS=both)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["skipped"] == 1500
    with Store.open(lab, keys=[new]) as s:  # rotation complete: the old key can go
        assert s.encryption_status()["current_key"] == BIG + 12
        out2 = tmp_path / "after.jsonl"
        s.export("lab", out2, include_archived=True)
    assert out.read_text() == out2.read_text()  # mid-rotation (both keys) and after (new key only): same content


def test_report_faults():
    print(f"\nFAULTS survived (SIGKILL mid-operation, then rerun): {len(FAULTS)}: {sorted(set(FAULTS))}")
