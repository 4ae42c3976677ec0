"""Restore drill (issue 6): back up, wipe the whole database, restore into the empty
database, and the export (gems, state, entanglements), embeddings and lattice clock
equal the ones before - plain and with encryption at rest. Corrupted/truncated
snapshots being refused with the database unchanged, and point-in-time replay equal to
the live state, are covered in tests/store/test_log_backup.py (not repeated here)."""
from __future__ import annotations

import numpy as np
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import MetaData

from core.access import SYSTEM, Actor, Role
from core.service import ensure_demo
from core.router import build_router
from core.store import Store
from core.service import Workbench

RESEARCHER = Actor("ria", Role.RESEARCHER)


def wipe(store: Store) -> None:
    """Drop every table (schema and Alembic record included): the disaster."""
    meta = MetaData()
    meta.reflect(store.engine)
    meta.drop_all(store.engine)
    store.close()


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_backup_wipe_restore_gives_the_same_lattice(db_url, tmp_path, encrypted):
    keys = [Fernet.generate_key().decode()] if encrypted else []
    store = Store.open(db_url, keys=keys)
    ensure_demo(store)
    store.advance("demo", 2.0, SYSTEM)
    "".join(Workbench(store, router=build_router("offline")).reflect("demo", "What is decoherence?", RESEARCHER))
    gid = store.list_gems("demo", page_size=1)[0]["id"].iloc[0]
    store.update_gem("demo", gid, RESEARCHER, content="Edited before the backup.")
    store.archive_gem("demo", store.list_gems("demo", page=2, page_size=1)[0]["id"].iloc[0], SYSTEM)
    before = store.export("demo", tmp_path / "before.jsonl", include_archived=True)
    info, emb = store.info("demo"), store.embeddings("demo")
    snap = store.backup("demo", tmp_path / "snap.zip", SYSTEM)
    wipe(store)

    with Store.open(db_url, keys=keys) as fresh:  # an empty database gets the schema again
        assert fresh.list_lattices() == []
        fresh.restore(snap["path"], SYSTEM)
        after = fresh.export("demo", tmp_path / "after.jsonl", include_archived=True)
        assert (tmp_path / "after.jsonl").read_text() == (tmp_path / "before.jsonl").read_text()
        assert (before["entanglements"], after["entanglements"]) == (before["entanglements"],) * 2
        assert (tmp_path / "after.entanglements.csv").read_text() == (tmp_path / "before.entanglements.csv").read_text()
        got = fresh.info("demo")
        assert (got.t, got.gems, got.archived, got.embedder, got.params) == (
            info.t, info.gems, info.archived, info.embedder, info.params)
        np.testing.assert_array_equal(fresh.embeddings("demo"), emb)
        assert fresh.get_gem("demo", gid)["content"] == "Edited before the backup."
        assert fresh.audit_log()["action"].tolist() == ["lattice.restore"]
        # the restored lattice works: a reflection on it
        assert "".join(Workbench(fresh, router=build_router("offline")).reflect("demo", "What is a phasor?", RESEARCHER))
