"""Issue 6, security in the store: every mutating call is refused to a viewer (and the list
of mutating calls is checked against the Store's public API, so a new one cannot slip
through unguarded), admin actions are audited, gem content is encrypted at rest with
rotation, and re-embedding is all or nothing."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from core.access import SYSTEM, Actor, PermissionDenied, Role
from core.errors import LatticeError
from core.store import ConflictError, EncryptionError, Store

from tests.store.conftest import RESEARCHER, VIEWER, sample_rows, write_jsonl

ADMIN = Actor("ada", Role.ADMIN)

# Public Store methods that never write (anything else must refuse a viewer, below).
READ_ONLY = {"open", "close", "url", "list_lattices", "exists", "info", "version", "load", "load_stored", "gem_times",
             "get_gem", "list_gems", "list_tags",
             "gem_texts", "embeddings", "entanglements", "export", "transactions", "snapshots", "replay_to",
             "list_runs", "get_run", "list_reflections", "audit_log", "encryption_status", "verify_snapshot",
             "sync", "content_rows", "contents", "lattice_names",  # reads of the lattice cache (sync catches up, as load)
             "replication", "READ_ONLY"}  # where the database stands in streaming replication; the replica flag
# The API's token machinery (core.store.auth_records): reads, and the writes of a log-in itself,
# which any user, a viewer too, must be able to make; they touch only the auth tables and the audit log.
TOKEN_MACHINERY = {"signing_keys", "api_key", "api_keys", "refresh_family", "ensure_signing_key",
                   "record_token_issue", "record_token_refusal", "exchange_refresh_token", "prune_refresh_tokens"}


def _mutations(store: Store, snapshot):
    """Every mutating public call, as a viewer would make it."""
    v = VIEWER
    return {
        "create_lattice": lambda: store.create_lattice("other", v),
        "delete_lattice": lambda: store.delete_lattice("lab", v),
        "update_params": lambda: store.update_params("lab", {"alpha": 2.0}, v),
        "set_clock": lambda: store.set_clock("lab", "wall", v),
        "save": lambda: store.save(store.load("lab"), v),
        "advance": lambda: store.advance("lab", 1.0, v),
        "simulate": lambda: store.simulate("lab", 1.0, v),
        "observe": lambda: store.observe("lab", ["g000"], v),
        "apply_reflection": lambda: store.apply_reflection("lab", ["g000", "g001"], v),
        "add_gem": lambda: store.add_gem("lab", v, "new content"),
        "update_gem": lambda: store.update_gem("lab", "g000", v, title="x"),
        "archive_gem": lambda: store.archive_gem("lab", "g000", v),
        "restore_gem": lambda: store.restore_gem("lab", "g000", v),
        "delete_gem": lambda: store.delete_gem("lab", "g000", v),
        "entangle": lambda: store.entangle("lab", "g003", "g004", 0.5, v),
        "disentangle": lambda: store.disentangle("lab", "g000", "g001", v),
        "import_path": lambda: store.import_path("lab", snapshot["file"], v),
        "backup": lambda: store.backup("lab", snapshot["dir"], v),
        "backup_database": lambda: store.backup_database(snapshot["dir"], v),
        "restore": lambda: store.restore(snapshot["path"], v, overwrite=True),
        "save_run": lambda: store.save_run("lab", "r", {}, {}, v),
        "record_reflection": lambda: store.record_reflection("lab", v, "q", "a"),
        "reembed": lambda: store.reembed("lab", "hashing-v1-64", v),
        "audit": lambda: store.audit(v, "user.create", "eve"),
        "rotate_keys": lambda: store.rotate_keys(v),
        "repair": lambda: store.repair("lab", v),
        "add_signing_key": lambda: store.add_signing_key(v, "kid", "EdDSA", "pem", {}, 0.0),
        "retire_signing_key": lambda: store.retire_signing_key(v, "kid", 0.0),
        "add_api_key": lambda: store.add_api_key(v, "000000000000", "bot", "admin", "0" * 64, 0.0),
        "revoke_api_key": lambda: store.revoke_api_key(v, "000000000000", 0.0),
    }


def _fingerprint(store: Store, tmp_path) -> tuple:
    with store.engine.connect() as conn:
        counts = tuple(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                       for t in ("lattices", "gems", "entanglements", "transactions", "runs", "reflections", "snapshots"))
    out = tmp_path / "fingerprint.jsonl"
    store.export("lab", out, include_archived=True)
    return counts, store.version("lab"), out.read_text()


def test_every_mutating_call_refuses_a_viewer_and_writes_nothing(filled, tmp_path):
    snap = filled.backup("lab", tmp_path, SYSTEM)
    calls = _mutations(filled, {"file": write_jsonl(tmp_path / "more.jsonl", [{"content": "x"}]),
                                "dir": tmp_path, "path": snap["path"]})
    public = {n for n, _ in inspect.getmembers(Store) if not n.startswith("_")}
    # a new public method must be classified here: read-only, or refused to a viewer
    classified = READ_ONLY | TOKEN_MACHINERY | set(calls)
    assert public == classified, sorted(public ^ classified)
    before = _fingerprint(filled, tmp_path)
    audit_before = len(filled.audit_log(limit=None))
    for name, call in calls.items():
        with pytest.raises(PermissionDenied, match="vic"):
            call()
    assert _fingerprint(filled, tmp_path) == before
    denied = filled.audit_log(limit=None)
    # refused admin attempts are themselves audited (and nothing else was written)
    assert set(denied["action"][denied["outcome"] == "denied"]) == {
        "lattice.delete", "lattice.backup", "db.backup", "lattice.restore", "user.create", "keys.rotate",
        "lattice.repair", "jwt.rotate", "jwt.retire", "apikey.create", "apikey.revoke"}
    assert len(denied) - audit_before == 11


def test_admin_actions_are_audited(filled, tmp_path):
    snap = filled.backup("lab", tmp_path, ADMIN)
    filled.restore(snap["path"], ADMIN, overwrite=True)
    filled.audit(ADMIN, "user.create", "eve", {"role": "viewer"})
    filled.reembed("lab", "hashing-v1-64", RESEARCHER)
    filled.delete_lattice("lab", ADMIN)
    log = filled.audit_log()
    assert list(log["action"]) == ["lattice.delete", "lattice.reembed", "user.create", "lattice.restore",
                                   "lattice.backup"]
    assert set(log["actor"]) == {"ada", "ria"} and set(log["outcome"]) == {"ok"}
    assert log.iloc[3]["details"]["sha256"] == snap["sha256"] and log.iloc[2]["details"] == {"role": "viewer"}
    with pytest.raises(LatticeError, match="action"):
        filled.audit(ADMIN, "DROP TABLE", "x")


KEY_OLD, KEY_NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def _raw_contents(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT content FROM gems ORDER BY pk")).scalars())


def test_encrypted_lattice_round_trip_search_and_rotation(db_url, tmp_path, caplog):
    src = write_jsonl(tmp_path / "g.jsonl", sample_rows(30))
    with Store.open(db_url, keys=[KEY_OLD]) as old:
        old.import_path("lab", src, SYSTEM)
        old.update_gem("lab", "g001", RESEARCHER, content="A secret about waves and tides.")
        raw = _raw_contents(old)
        assert all(c.startswith("fernet:") for c in raw) and not any("waves" in c for c in raw)
        plain_export = old.export("lab", tmp_path / "a.jsonl")
        df, total = old.list_gems("lab", text="TIDES")  # search after decryption
        assert total == 1 and df.iloc[0]["id"] == "g001"
        df3, n3 = old.list_gems("lab", text="waves", page=2, page_size=3)
        assert n3 == 11 and len(df3) == 3  # 10 about waves + the edited one; pages after filtering
        assert old.get_gem("lab", "g001")["content"] == "A secret about waves and tides."
        edit = old.transactions("lab", kinds=["edit"]).iloc[-1]
        assert str(edit["after"]["content"][0]).startswith("fernet:")
        engine_texts = old.gem_texts("lab")["content"].tolist()
        assert engine_texts[1] == "A secret about waves and tides."
        emb = old.embeddings("lab")
    # without keys: a clear error, never ciphertext shown as content
    with Store.open(db_url, keys=[]) as nokey:
        with pytest.raises(EncryptionError, match="LATTICE_ENCRYPTION_KEYS"):
            nokey.get_gem("lab", "g001")
    # new key first, old key kept: everything still reads; rotation moves every row
    with Store.open(db_url, keys=[KEY_NEW, KEY_OLD]) as both:
        assert both.encryption_status()["older_key"] == 30
        assert both.list_gems("lab", text="tides")[1] == 1
        counts = both.rotate_keys(ADMIN, batch_size=7)
        assert counts["rotated"] == 30 and counts["batches"] == 5 and counts["log_entries"] == 1
        assert both.encryption_status() == {"gems": 30, "plaintext": 0, "current_key": 30, "older_key": 0,
                                            "reflections": 0, "reflections_plaintext": 0,
                                            "reflections_current_key": 0, "reflections_older_key": 0}
        assert both.rotate_keys(ADMIN)["rotated"] == 0  # idempotent
        audit = both.audit_log(action="keys.rotate")
        assert list(audit["outcome"]) == ["ok", "started", "ok", "started"]
    with Store.open(db_url, keys=[KEY_NEW]) as new:  # the old key can go now
        assert new.export("lab", tmp_path / "b.jsonl")["gems"] == plain_export["gems"]
        assert (tmp_path / "b.jsonl").read_text() == (tmp_path / "a.jsonl").read_text()
        assert np.array_equal(new.embeddings("lab"), emb)
        assert str(new.transactions("lab", kinds=["edit"]).iloc[-1]["after"]["content"][0]).startswith("fernet:")
        new.transactions("lab")
        assert new.get_gem("lab", "g001")["content"].startswith("A secret")
    for rec in caplog.records:  # keys never logged
        assert KEY_OLD not in rec.getMessage() and KEY_NEW not in rec.getMessage()


def test_plaintext_rows_are_encrypted_by_rotation_and_bad_keys_are_not_echoed(db_url, tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", sample_rows(5))
    with Store.open(db_url, keys=[]) as plain:
        plain.import_path("lab", src, SYSTEM)
        snap = plain.backup("lab", tmp_path, SYSTEM)
    with Store.open(db_url, keys=[KEY_NEW]) as enc:
        assert enc.encryption_status()["plaintext"] == 5
        assert enc.rotate_keys(ADMIN)["rotated"] == 5
        assert all(c.startswith("fernet:") for c in _raw_contents(enc))
        enc.restore(snap["path"], ADMIN, overwrite=True)  # a plain-text snapshot is encrypted on restore
        assert all(c.startswith("fernet:") for c in _raw_contents(enc))
        enc_snap = enc.backup("lab", tmp_path / "enc.zip", ADMIN)
    with Store.open(db_url, keys=[Fernet.generate_key().decode()]) as wrong:
        with pytest.raises(LatticeError, match="nothing was restored"):
            wrong.restore(enc_snap["path"], ADMIN, overwrite=True)  # verified before anything is written
    bad = "not-a-key-" + "x" * 30
    with pytest.raises(EncryptionError) as err:
        Store.open(db_url, keys=[KEY_NEW, bad])
    assert bad not in str(err.value) and "key #2" in str(err.value)


@pytest.fixture
def small_embedder():
    return "hashing-v1-64"


def test_reembed_switches_embedder_all_or_nothing(filled, small_embedder, monkeypatch):
    before = filled.info("lab")
    seen = []
    info = filled.reembed("lab", small_embedder, RESEARCHER, progress=lambda d, t: seen.append((d, t)), batch_size=5)
    assert (info.embedder, info.dim, info.version) == (small_embedder, 64, before.version + 1)
    assert seen[-1] == (12, 12) and len(seen) == 3
    emb = filled.embeddings("lab")
    assert emb.shape == (12, 64) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert filled.transactions("lab").iloc[-1]["kind"] == "reembed"
    filled.add_gem("lab", RESEARCHER, "a gem embedded with the new embedder")  # new gems use it
    assert filled.embeddings("lab").shape == (13, 64)

    # a concurrent content change during the embedding: nothing written
    original = filled._write

    def edit_first(*a, **k):
        monkeypatch.setattr(filled, "_write", original)
        filled.update_gem("lab", "g000", SYSTEM, content="changed meanwhile")
        return original(*a, **k)
    monkeypatch.setattr(filled, "_write", edit_first)
    v = filled.version("lab")
    with pytest.raises(ConflictError, match="run it again"):
        filled.reembed("lab", "hashing-v1", RESEARCHER)
    assert filled.info("lab").embedder == small_embedder and filled.version("lab") == v + 1
    with pytest.raises(LatticeError, match="unknown embedder"):
        filled.reembed("lab", "no-such-embedder", RESEARCHER)


def test_reembed_cli_with_progress(sqlite_url, sample_file, monkeypatch, capsys):
    from core.cli import main
    monkeypatch.setenv("LATTICE_DATABASE_URL", sqlite_url)
    assert main(["import", str(sample_file), "--lattice", "lab"]) == 0
    capsys.readouterr()
    assert main(["reembed", "--lattice", "lab", "--embedder", "hashing-v1-128", "--batch-size", "4"]) == 0
    out, err = capsys.readouterr()
    assert "re-embedded lattice 'lab' (12 gems) with hashing-v1-128 (dimension 128)" in out and "100%" in err
    assert main(["reembed", "--lattice", "lab", "--embedder", "nope"]) == 2
    assert "unknown embedder" in capsys.readouterr().err
    assert main(["keys", "generate"]) == 0
    key = capsys.readouterr().out.strip()
    Fernet(key.encode())
    monkeypatch.setenv("LATTICE_ENCRYPTION_KEYS", key)
    assert main(["keys", "rotate", "--json"]) == 0
    assert '"rotated": 12' in capsys.readouterr().out
    assert main(["keys", "status"]) == 0
    assert "12 under the newest key" in capsys.readouterr().out
    assert main(["audit"]) == 0
    out = capsys.readouterr().out
    assert "keys.rotate" in out and "lattice.reembed" in out and key not in out
