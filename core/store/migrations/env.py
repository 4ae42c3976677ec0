"""Alembic environment, configured programmatically by core.store.db (no alembic.ini).

The caller passes an open connection in ``config.attributes["connection"]``, so the
migration runs on exactly the engine (URL, schema search_path, SQLite pragmas) the
store uses.
"""
from __future__ import annotations

from alembic import context

from core.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - always called through core.store.db
    raise RuntimeError("run migrations with `python -m core db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs need batch mode
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
