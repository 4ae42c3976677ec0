"""Schema management: Alembic upgrade of an empty database, refusal of a newer schema, SQLite pragmas."""
from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import inspect, text

from core.store import SchemaError, Store
from core.store import db


def test_empty_database_is_upgraded_to_head(db_url):
    engine = db.create_db_engine(db_url)
    try:
        assert db.current_revision(engine) is None
        with Store.open(db_url) as store:
            assert db.current_revision(store.engine) == db.head_revision()
            tables = set(inspect(store.engine).get_table_names())
        assert {"lattices", "gems", "entanglements", "transactions", "reflections", "runs", "snapshots"} <= tables
        assert db.upgrade(engine) == db.head_revision()  # idempotent
    finally:
        engine.dispose()


def test_newer_schema_is_refused_and_left_alone(db_url):
    Store.open(db_url).close()
    engine = db.create_db_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))
    with pytest.raises(SchemaError, match="newer than this code"):
        Store.open(db_url)
    with pytest.raises(SchemaError):
        db.upgrade(engine)
    assert db.current_revision(engine) == "ffff9999"
    engine.dispose()


def test_foreign_tables_without_migration_record_are_refused(sqlite_url):
    engine = db.create_db_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE gems (x INTEGER)"))
    engine.dispose()
    with pytest.raises(SchemaError, match="not created by this program"):
        Store.open(sqlite_url)


def test_sqlite_file_is_created_with_wal_and_foreign_keys(tmp_path):
    path = tmp_path / "sub" / "dir" / "lattice.db"
    with Store.open(f"sqlite:///{path}") as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert path.exists()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_database_url_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LATTICE_DATABASE_URL", f"sqlite:///{tmp_path}/env.db")
    assert db.database_url() == f"sqlite:///{tmp_path}/env.db"
    assert db.database_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    monkeypatch.delenv("LATTICE_DATABASE_URL")
    assert db.database_url().endswith("data/lattice.db")


def test_upgrade_from_0002_moves_state_to_its_own_table_and_keeps_everything(db_url):
    """A database written before migration 0003 (state inside ``gems``) keeps every gem,
    state value, edge and version through the upgrade, and the downgrade brings it back."""
    engine = db.create_db_engine(db_url)
    try:
        db.upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO lattices (id, name, params, embedder, dim, time_unit, clock, t, version, "
                              "created_at, updated_at) VALUES (1, 'old', '{}', 'hashing-v1-16', 16, 's', 'manual', "
                              "2.5, 7, '2026-01-01', '2026-01-01')"))
            for pk, (e, p, c, u, obs) in enumerate([(1.5, 7.25, 0.5, 0.125, None), (0.25, -1.0, 1.0, 0.0, 2.0)], 1):
                conn.execute(text(
                    "INSERT INTO gems (pk, lattice_id, gem_id, seq, title, content, tags, source, embedding, energy, "
                    "phase, coherence, uncertainty, created_at, updated_at, last_observed, archived, version) VALUES "
                    f"({pk}, 1, 'g{pk}', {pk}, 'T{pk}', 'content {pk}', '[\"a\"]', 's', :emb, {e}, {p}, {c}, {u}, "
                    "'2026-01-01', '2026-01-01', :obs, false, 4)"), {"emb": bytes(64), "obs": obs})
            conn.execute(text("INSERT INTO entanglements (lattice_id, gem_a, gem_b, weight) VALUES (1, 1, 2, 0.75)"))
        assert db.upgrade(engine) == db.head_revision()
        with Store.open(db_url) as store:
            lat = store.load("old").lattice
            assert lat.ids == ["g1", "g2"] and lat.t == 2.5
            assert lat.energy.tolist() == [1.5, 0.25] and lat.phase.tolist() == [7.25, -1.0]
            assert lat.coherence.tolist() == [0.5, 1.0] and lat.uncertainty.tolist() == [0.125, 0.0]
            assert lat.edge_arrays()[2].tolist() == [0.75]
            g2 = store.get_gem("old", "g2")
            assert (g2["last_observed"], g2["version"], g2["state_version"], g2["title"]) == (2.0, 4, 4, "T2")
        assert "energy" not in {c["name"] for c in inspect(engine).get_columns("gems")}
        db.upgrade(engine, "0003")  # idempotent at head
        assert db.downgrade(engine, "0002") == "0002"
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT gem_id, energy, phase, coherence, uncertainty, last_observed "
                                     "FROM gems ORDER BY seq")).all()
            assert [tuple(r) for r in rows] == [("g1", 1.5, 7.25, 0.5, 0.125, None), ("g2", 0.25, -1.0, 1.0, 0.0, 2.0)]
            assert conn.execute(text("SELECT count(*) FROM entanglements")).scalar() == 1
        assert "gem_states" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_the_fast_head_check_agrees_with_alembic(db_url):
    """Store.open skips alembic when the database is at HEAD_REVISION (start-up time): that must be alembic's head."""
    assert db.HEAD_REVISION == db.head_revision()
    engine = db.create_db_engine(db_url)
    try:
        assert not db.is_current(engine)  # empty database
        db.upgrade(engine)
        assert db.is_current(engine)
    finally:
        engine.dispose()
