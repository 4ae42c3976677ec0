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
