"""Transaction log, snapshots (verify before write, atomic restore) and point-in-time recovery."""
from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.access import SYSTEM, Actor, Role
from core.errors import LatticeError
from core.engine import LatticeParams
from core.store import SnapshotError
from tests.store.conftest import RESEARCHER

STATE = ("energy", "phase", "coherence", "uncertainty")


def assert_same_lattice(a, b):
    assert a.ids == b.ids and a.t == b.t and a.params == b.params
    for name in STATE:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for x, y in zip(a.edge_arrays(), b.edge_arrays()):
        np.testing.assert_array_equal(x, y)


def test_log_is_compact_and_records_before_after(filled, caplog):
    with caplog.at_level(logging.INFO, logger="core.store.txlog"):
        filled.simulate("lab", 1.0, RESEARCHER, dt=0.1)
        filled.observe("lab", ["g004"], RESEARCHER, strength=0.5)
        filled.update_gem("lab", "g004", RESEARCHER, energy=3.0)
    log = filled.transactions("lab")
    assert log["kind"].tolist() == ["create_lattice", "import", "evolve", "observe", "edit"]
    evolve = log.iloc[2]
    assert evolve.gem_ids == [] and evolve.after["horizon"] == 1.0 and evolve.after["step"] == 0.1
    assert evolve.after["params"] == LatticeParams().to_dict() and evolve.lattice_t == pytest.approx(1.0)
    obs = log.iloc[3]
    assert obs.gem_ids == ["g004"] and obs.after["coherence"][0] > obs.before["coherence"][0]
    edit = log.iloc[4]
    assert edit.before["energy"] != [3.0] and edit.after["energy"] == [3.0] and edit.actor == "ria"
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    per_gem = [line for line in lines if line.get("gem_id") == "g004" and line["event"] == "observe"]
    assert per_gem and {"coherence_delta", "energy", "timestamp", "lattice"} <= set(per_gem[0])
    assert any(line["event"] == "evolve" and line["gems"] == 0 for line in lines)


def test_backup_restore_round_trip(store, sample_file, tmp_path):
    store.import_path("lab", sample_file, SYSTEM)
    store.advance("lab", 0.5, SYSTEM)
    store.archive_gem("lab", "g007", SYSTEM)
    snap = store.backup("lab", tmp_path / "snaps", SYSTEM)
    assert snap["gems"] == 12 and len(snap["sha256"]) == 64
    with zipfile.ZipFile(snap["path"]) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert set(manifest["files"]) == {"lattice.json", "gems.jsonl", "embeddings.npy", "entanglements.jsonl"}
    saved = store.load("lab")
    emb = store.embeddings("lab", saved.lattice.ids)
    store.advance("lab", 3.0, SYSTEM)
    store.delete_gem("lab", "g001", SYSTEM)
    out = store.restore(snap["path"], SYSTEM, overwrite=True)
    assert out["version"] > saved.version  # the version keeps rising (caches stay correct)
    back = store.load("lab")
    assert_same_lattice(back.lattice, saved.lattice)
    np.testing.assert_array_equal(store.embeddings("lab", back.lattice.ids), emb)
    assert store.list_gems("lab", archived=True)[0]["id"].tolist() == ["g007"]
    store.restore(snap["path"], SYSTEM, name="clone")
    assert_same_lattice(store.load("clone").lattice, saved.lattice)
    assert store.transactions("lab")["kind"].iloc[-1] == "restore"


def _corrupt_member(src, dst, member):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == member:
                data = data.replace(b"0", b"1", 1) if member != "embeddings.npy" else data[:-4] + b"\x00\x00\x80\x7f"
            zout.writestr(item.filename, data)


@pytest.mark.parametrize("damage", ["gems", "embeddings", "truncated", "foreign_zip", "not_zip", "missing_member"])
def test_restore_refuses_bad_snapshots_and_touches_nothing(filled, tmp_path, damage):
    snap = filled.backup("lab", tmp_path / "good.zip", SYSTEM)["path"]
    filled.advance("lab", 1.0, SYSTEM)
    before = filled.load("lab")
    bad = tmp_path / "bad.zip"
    if damage == "gems":
        _corrupt_member(snap, bad, "gems.jsonl")
    elif damage == "embeddings":
        _corrupt_member(snap, bad, "embeddings.npy")
    elif damage == "truncated":
        data = open(snap, "rb").read()
        bad.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "foreign_zip":
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("manifest.json", json.dumps({"format": "something-else"}))
    elif damage == "not_zip":
        bad.write_text("hello")
    else:
        with zipfile.ZipFile(snap) as zin, zipfile.ZipFile(bad, "w") as zout:
            for item in zin.infolist():
                if item.filename != "entanglements.jsonl":
                    zout.writestr(item.filename, zin.read(item.filename))
    with pytest.raises(SnapshotError) as err:
        filled.restore(bad, SYSTEM, overwrite=True)
    assert str(bad) in str(err.value)
    after = filled.load("lab")
    assert after.version == before.version
    assert_same_lattice(after.lattice, before.lattice)
    with pytest.raises(SnapshotError):
        filled.restore(bad, SYSTEM, name="elsewhere")
    assert not filled.exists("elsewhere")


def test_point_in_time_recovery_reproduces_exact_state(store, sample_file, tmp_path):
    """Snapshot, then a history of every kind of change; replay to each time equals the state then."""
    store.import_path("lab", sample_file, SYSTEM)
    store.advance("lab", 0.2, SYSTEM)
    snap = store.backup("lab", tmp_path / "s.zip", SYSTEM)["path"]
    states = {}

    def mark():
        loaded = store.load("lab").lattice
        states[loaded.t] = loaded

    steps = [
        lambda: store.simulate("lab", 0.5, RESEARCHER, dt=0.1),
        lambda: store.observe("lab", ["g002"], RESEARCHER),
        lambda: store.update_params("lab", {"K": 0.8, "lambda_": 1.5}, RESEARCHER),
        lambda: store.simulate("lab", 0.4, RESEARCHER, dt=0.15),  # coupled phases (K != 0) via solve_ivp
        lambda: store.apply_reflection("lab", ["g000", "g003", "g008"], RESEARCHER),
        lambda: store.update_gem("lab", "g005", RESEARCHER, energy=2.5, phase=1.0),
        lambda: store.add_gem("lab", RESEARCHER, "A gem added later.", id="late"),
        lambda: store.entangle("lab", "late", "g001", 0.7, RESEARCHER),
        lambda: store.archive_gem("lab", "g006", RESEARCHER),
        lambda: store.delete_gem("lab", "g009", RESEARCHER),
        lambda: store.advance("lab", 0.25, RESEARCHER),
        lambda: store.restore_gem("lab", "g006", RESEARCHER),
        lambda: store.disentangle("lab", "g000", "g001", RESEARCHER),
        lambda: store.import_path("lab", write_more(tmp_path), RESEARCHER),
        lambda: store.advance("lab", 1.0, RESEARCHER, step=0.3),
    ]
    for step in steps:
        step()
        mark()  # the state at T is the one after every change made at lattice time T
    loaded = store.load("lab")
    loaded.lattice.set_state(1, coherence=0.123)
    store.save(loaded, RESEARCHER)
    mark()
    assert len(states) == 4
    for t, expected in states.items():
        assert_same_lattice(store.replay_to("lab", snap, t), expected)
    with pytest.raises(Exception, match="before the snapshot"):
        store.replay_to("lab", snap, 0.1)


def write_more(tmp_path):
    path = tmp_path / "more.jsonl"
    path.write_text('{"id": "m1", "content": "more one", "energy": 3.0}\n{"id": "m2", "content": "more two"}\n')
    (tmp_path / "more.entanglements.csv").write_text("source,target,weight\nm1,g002,0.25\n")
    return path


def test_valid_checksums_but_invalid_content_is_refused(filled, tmp_path):
    import hashlib
    snap = filled.backup("lab", tmp_path / "good.zip", SYSTEM)["path"]
    with zipfile.ZipFile(snap) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    gems = [json.loads(line) for line in members["gems.jsonl"].decode().splitlines()]
    gems[3]["coherence"] = 7.0
    members["gems.jsonl"] = "".join(json.dumps(g) + "\n" for g in gems).encode()
    manifest = json.loads(members["manifest.json"])
    manifest["files"]["gems.jsonl"] = {"sha256": hashlib.sha256(members["gems.jsonl"]).hexdigest(),
                                       "bytes": len(members["gems.jsonl"])}
    members["manifest.json"] = json.dumps(manifest).encode()
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    v0 = filled.info("lab").version
    with pytest.raises(SnapshotError, match="coherence"):
        filled.restore(forged, SYSTEM, overwrite=True)
    assert filled.info("lab").version == v0


def test_failure_inside_the_write_rolls_everything_back(filled, tmp_path, monkeypatch):
    """Fault injection at the last statement of a restore and an import: nothing stays written."""
    from core.store import txlog
    snap = filled.backup("lab", tmp_path / "s.zip", SYSTEM)["path"]
    filled.advance("lab", 1.0, SYSTEM)
    before = filled.load("lab")
    real_append = txlog.append

    def failing_append(conn, lattice_id, name, kind, *args, **kwargs):
        if kind in ("restore", "import"):
            raise RuntimeError("disk full (injected)")
        return real_append(conn, lattice_id, name, kind, *args, **kwargs)

    monkeypatch.setattr(txlog, "append", failing_append)
    with pytest.raises(RuntimeError):
        filled.restore(snap, SYSTEM, overwrite=True)
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": "new1", "content": "one"}\n{"id": "new2", "content": "two"}\n')
    with pytest.raises(RuntimeError):
        filled.import_path("lab", more, SYSTEM)
    after = filled.load("lab")
    assert after.version == before.version
    assert_same_lattice(after.lattice, before.lattice)
    assert filled.list_gems("lab", archived=None)[1] == 12


def test_replay_to_a_time_inside_a_simulation_gives_the_state_at_that_step(store, sample_file, tmp_path):
    """A simulation in steps of 0.1 passed through the state at 0.5; replaying to 0.55 gives
    exactly that state (the same steps on a twin lattice), with the clock at 0.5."""
    store.import_path("lab", sample_file, SYSTEM)
    store.import_path("twin", sample_file, SYSTEM)
    store.update_params("lab", {"K": 0.6}, SYSTEM)  # coupled phases too
    store.update_params("twin", {"K": 0.6}, SYSTEM)
    snap = store.backup("lab", tmp_path / "s.zip", SYSTEM)["path"]
    store.simulate("lab", 1.0, RESEARCHER, dt=0.1)
    store.simulate("twin", 0.5, RESEARCHER, dt=0.1)
    replayed = store.replay_to("lab", snap, 0.55)
    assert replayed.t == 0.5
    assert_same_lattice(replayed, store.load("twin").lattice)
    assert_same_lattice(store.replay_to("lab", snap, 1.0), store.load("lab").lattice)  # the whole run


def test_whole_sqlite_database_backup_while_writers_run(sqlite_url, sample_file, tmp_path):
    """SQLite's online backup API copies the live database (every lattice, log, audit)
    while another thread keeps advancing a lattice; the copy is complete and consistent."""
    import threading

    from core.store import Store
    admin = Actor("ada", Role.ADMIN)
    with Store.open(sqlite_url) as store:
        store.import_path("lab", sample_file, SYSTEM)
        store.import_path("second", sample_file, SYSTEM)
        stop = threading.Event()

        def keep_writing():
            while not stop.is_set():
                store.advance("lab", 0.01, SYSTEM)

        (tmp_path / "backups").mkdir()
        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            out = store.backup_database(tmp_path / "backups", admin)
        finally:
            stop.set()
            writer.join()
        assert out["lattices"] == ["lab", "second"] and out["bytes"] > 0
        assert Path(out["path"]).parent == tmp_path / "backups" and Path(out["path"]).name.startswith("lattice-")
        assert not list((tmp_path / "backups").glob("*.tmp"))
        audit = store.audit_log()
        assert "db.backup" in set(audit["action"])
    with Store.open(f"sqlite:///{out['path']}") as copy:
        assert [i.name for i in copy.list_lattices()] == ["lab", "second"]
        lat = copy.load("lab").lattice
        assert len(lat) == 12 and copy.info("lab").version >= 1
        log = copy.transactions("lab")
        assert log["lattice_version"].max() == copy.info("lab").version  # the log and the state agree
    with pytest.raises(Exception, match="the database itself"):
        Store.open(sqlite_url).backup_database(sqlite_url.removeprefix("sqlite:///"), admin)


def test_whole_database_backup_on_postgresql_points_to_pg_dump(pg_url, tmp_path):
    from core.store import Store
    with Store.open(pg_url) as store:
        with pytest.raises(LatticeError, match="pg_dump"):
            store.backup_database(tmp_path, Actor("ada", Role.ADMIN))
