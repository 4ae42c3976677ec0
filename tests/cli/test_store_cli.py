"""The store commands of ``python -m core``: data as --json, one-line errors, exit codes."""
from __future__ import annotations

import subprocess
import sys

import pytest

from core.store import db
from tests.conftest import ROOT


def test_db_upgrade_and_current(cli):
    assert cli.json("db", "current")["state"] == "empty"
    assert cli.json("db", "upgrade")["to"] == db.head_revision()
    assert cli.json("db", "current")["state"] == "current"
    engine = db.create_db_engine()
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff9999'")
    engine.dispose()
    assert cli.json("db", "current")["state"] == "newer than this code"
    code, _, err = cli("lattices")
    assert code == 2 and "newer than this code" in err and err.count("\n") == 1


def test_import_export_log_lattices(cli, sample_file, tmp_path):
    code, out, err = cli("import", str(sample_file), "--lattice", "lab")
    assert code == 0 and "imported 12 gems and 2 entanglements" in out and "100%" in err
    assert [x["name"] for x in cli.json("lattices")] == ["lab"]
    res = cli.json("export", "--lattice", "lab", "--out", str(tmp_path / "x.csv"))
    assert res["gems"] == 12 and (tmp_path / "x.entanglements.csv").exists()
    assert [e["kind"] for e in cli.json("log", "--lattice", "lab")] == ["create_lattice", "import"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"content": "fine"}\n{"id": 3.5, "content": "x"}\n')
    code, out, err = cli("import", str(bad), "--lattice", "other")
    assert code == 2 and err.count("\n") == 1 and "bad.jsonl, line 2, field 'id'" in err
    assert [x["name"] for x in cli.json("lattices")] == ["lab"]
    report = cli.json("import", str(bad), "--lattice", "other", "--skip-bad")
    assert report["imported"] == 1 and report["skipped"][0]["line"] == 2


def test_demo_simulate_persist(cli):
    first = cli.json("demo", "--if-missing")
    assert first["created"] and first["gems"] > 100 and first["entanglements"] > 0
    assert not cli.json("demo", "--if-missing")["created"]
    a = cli.json("simulate", "--lattice", "demo", "--t", "1")
    b = cli.json("simulate", "--lattice", "demo", "--t", "0.5", "--set", "K=0.5")
    assert (a["t_start"], a["t_end"], b["t_start"], b["t_end"]) == (0.0, 1.0, 1.0, 1.5)
    assert b["version"] == a["version"] + 1 and b["params"]["K"] == 0.5
    assert b["start"]["mean_coherence"] == pytest.approx(a["end"]["mean_coherence"])
    log = cli.json("log", "--lattice", "demo", "--kind", "evolve")
    assert [e["after"]["horizon"] for e in log] == [1.0, 0.5]
    code, _, err = cli("simulate", "--lattice", "nope", "--t", "1")
    assert code == 2 and "unknown lattice 'nope'" in err
    code, _, err = cli("simulate", "--lattice", "demo", "--t", "-1")
    assert code == 2 and err.startswith("error: t:")


def test_backup_restore_commands(cli, sample_file, tmp_path):
    cli("import", str(sample_file), "--lattice", "lab")
    snap = cli.json("backup", "--lattice", "lab", "--out", str(tmp_path / "b.zip"))
    cli("simulate", "--lattice", "lab", "--t", "2")
    code, _, err = cli("restore", snap["path"])  # never over an existing lattice without --force
    assert code == 2 and "--force" in err and "nothing was written" in err
    assert cli.json("lattices")[0]["t"] == 2.0
    out = cli.json("restore", snap["path"], "--force")
    assert out["t"] == 0.0 and cli.json("lattices")[0]["t"] == 0.0
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 not really")
    code, _, err = cli("restore", str(tmp_path / "junk.zip"))
    assert code == 2 and "junk.zip" in err and err.count("\n") == 1


def test_subprocess_error_has_no_traceback(tmp_path):
    env = {"LATTICE_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "core", "export", "--lattice", "ghost", "--out", str(tmp_path / "o.jsonl")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: unknown lattice 'ghost'; available: none (import one or run `python -m core demo`)"


def test_db_backup_copies_sqlite_and_points_postgresql_to_pg_dump(cli, db_url, tmp_path):
    cli.json("demo")
    if db_url.startswith("sqlite"):
        out = cli.json("db", "backup", "--out", str(tmp_path / "copy.db"))
        assert out["path"] == str(tmp_path / "copy.db") and out["lattices"] == ["demo"]
        assert (tmp_path / "copy.db").stat().st_size == out["bytes"]
    else:
        code, out, err = cli("db", "backup", "--out", str(tmp_path / "copy.db"))
        assert code == 2 and "pg_dump" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
