"""Database URL, engine and schema management (Alembic, configured in code).

- URL: ``LATTICE_DATABASE_URL`` if set, else a SQLite file ``data/lattice.db`` created on
  first use. PostgreSQL URLs use psycopg 3 (``postgresql+psycopg://``; a bare
  ``postgresql://`` is mapped to it). A PostgreSQL schema can be chosen with
  ``?options=-csearch_path%3Dmyschema`` (tests use one schema per run).
- Several servers (a Patroni pair, deploy/patroni/): libpq's multi-host form
  ``postgresql+psycopg://user@h1:p1,h2:p2/db?target_session_attrs=read-write`` is accepted
  and rewritten to SQLAlchemy's ``?host=h1:p1&host=h2:p2`` form (its own parser takes one
  host); libpq then connects to whichever server accepts writes.
- SQLite: WAL journal, foreign keys on, a busy timeout, and real transactions (pysqlite's
  own implicit BEGIN is switched off and SQLAlchemy emits BEGIN), so a multi-SELECT read
  is one consistent snapshot and DDL is transactional.
- Schema: :func:`ensure_schema` upgrades an empty or older database to the code's head
  and refuses one whose revision the code does not know (written by newer code).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from core.errors import LatticeError
from core.paths import DATA_DIR

if TYPE_CHECKING:  # alembic is imported only when a schema is checked or migrated (start-up time)
    from alembic.config import Config

DEFAULT_SQLITE_PATH = DATA_DIR / "lattice.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ENV_URL = "LATTICE_DATABASE_URL"
ENV_READ_URL = "LATTICE_READ_DATABASE_URL"
# The migrations are one linear chain named NNNN_*.py with revision "NNNN", so the head is the
# largest number; tests/store/test_schema.py checks that this agrees with alembic's own head.
HEAD_REVISION = max(p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


class SchemaError(LatticeError):
    """The database schema cannot be used by this version of the code."""


def database_url(url: str | None = None) -> str:
    """The URL to use: ``url``, else ``$LATTICE_DATABASE_URL``, else the default SQLite file."""
    url = url or os.environ.get(ENV_URL) or f"sqlite:///{DEFAULT_SQLITE_PATH}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return _multi_host(url)


def _multi_host(url: str) -> str:
    """``scheme://user@h1:p1,h2:p2/db?q`` as ``scheme://user@/db?host=h1:p1&host=h2:p2&q``."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        return url
    netloc, _, tail = rest.partition("/")
    creds, at, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return url
    path, _, query = tail.partition("?")
    params = "&".join(f"host={h}" for h in hosts.split(",") if h)
    return f"{scheme}://{creds}{at}/{path}?{params}" + (f"&{query}" if query else "")


def _sqlite_on_connect(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN control transactions
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")  # wait for a concurrent writer instead of failing
    cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fsync at checkpoints
    cur.close()


def read_database_url() -> str | None:
    """``$LATTICE_READ_DATABASE_URL``: a read replica for read-only calls (None when unset).
    Same forms as :func:`database_url`; see core.store.read_only."""
    url = os.environ.get(ENV_READ_URL, "").strip()
    return database_url(url) if url else None


def _sqlite_query_only(dbapi_conn, _record) -> None:
    dbapi_conn.execute("PRAGMA query_only=ON")  # SQLite's own refusal of any write on this connection


def create_db_engine(url: str | None = None, *, read_only: bool = False) -> Engine:
    """An engine for ``url`` (see :func:`database_url`), with the SQLite settings above.

    ``read_only``: every session refuses writes in the database itself (PostgreSQL:
    ``default_transaction_read_only``; SQLite: ``PRAGMA query_only``), behind the store's own
    refusal (core.store.read_only), so not even a forgotten code path can write through it."""
    url = database_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise LatticeError(f"invalid database URL {url!r} (set {ENV_URL} to e.g. "
                           "postgresql+psycopg://user@host/db or sqlite:///path.db)") from None
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            try:
                Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LatticeError(f"cannot create the database folder for {db}: {exc.strerror}") from None
        # NullPool: a connection per checkout is cheap for a file and avoids sharing
        # sqlite connections across Streamlit's threads.
        engine = create_engine(parsed, poolclass=NullPool)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        if read_only:
            event.listen(engine, "connect", _sqlite_query_only)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise LatticeError(f"unsupported database {parsed.get_backend_name()!r}; use SQLite or PostgreSQL")
    # pool_pre_ping: a connection broken while the server was away is replaced on checkout,
    # so the store recovers by itself when the database returns; connect_timeout bounds
    # how long a call waits for an unreachable server before DatabaseUnavailable.
    # Pool per process (node): LATTICE_DB_POOL_SIZE connections (default 5) + 10 overflow.
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 5}
    if read_only:  # added to the URL's own options (a search_path, say), which connect_args would replace
        options = parsed.query.get("options", "")
        options = " ".join(options) if isinstance(options, tuple) else options  # ?options=..&options=..
        connect_args["options"] = f"{options} -c default_transaction_read_only=on".strip()
    size = os.environ.get("LATTICE_DB_POOL_SIZE", "5")
    if not size.isdigit() or not 1 <= int(size) <= 1000:
        raise LatticeError(f"LATTICE_DB_POOL_SIZE={size!r}: use a whole number from 1 to 1000")
    return create_engine(parsed, pool_pre_ping=True, pool_size=int(size), max_overflow=10, pool_timeout=30,
                         connect_args=connect_args)


def alembic_config() -> Config:
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    return cfg


def head_revision() -> str:
    """The newest schema revision this code knows (alembic's head)."""
    from alembic.script import ScriptDirectory
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        from core.store.errors import DatabaseUnavailable
        raise DatabaseUnavailable(f"cannot connect to the database {engine.url.render_as_string()}: "
                           f"{str(exc.orig).strip().splitlines()[0]}") from None


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Run the migrations up to ``revision`` in one transaction; return the new revision."""
    from alembic import command
    check_known(engine)
    _migrate(engine, lambda cfg: command.upgrade(cfg, revision))
    return current_revision(engine) or ""


def downgrade(engine: Engine, revision: str) -> str:
    """Undo the migrations above ``revision`` in one transaction; return the new revision."""
    from alembic import command
    check_known(engine)
    _migrate(engine, lambda cfg: command.downgrade(cfg, revision))
    return current_revision(engine) or ""


def _migrate(engine: Engine, run: Callable[[Config], None]) -> None:
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # SQLite changes a table by copying it and dropping the old one; with foreign
            # keys on, that drop would cascade into the rows that point at it. The switch
            # only works outside a transaction, hence on the raw connection before BEGIN
            # (NullPool: the connection is not reused); the keys are checked before commit.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        with conn.begin():
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            run(cfg)
            if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                raise SchemaError("the schema change left rows with broken foreign keys; nothing was changed")


def check_known(engine: Engine) -> str | None:
    """Raise SchemaError if the database's revision is unknown to this code (newer schema)."""
    rev = current_revision(engine)
    if rev is None:
        tables = set(inspect(engine).get_table_names())
        if tables & {"lattices", "gems"}:
            raise SchemaError(f"the database {engine.url.render_as_string()} has lattice tables but no "
                              "migration record; it was not created by this program")
        return None
    from alembic.script import ScriptDirectory
    script = ScriptDirectory.from_config(alembic_config())
    try:
        script.get_revision(rev)
    except Exception:
        raise SchemaError(
            f"the database schema (revision {rev}) is newer than this code (head {script.get_current_head()}); "
            "upgrade the Gem Lattice Workbench, or point LATTICE_DATABASE_URL at another database") from None
    return rev


def is_current(engine: Engine) -> bool:
    """True when the database is at HEAD_REVISION: one query, no alembic (the common case at start-up)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD_REVISION]
    except Exception:  # no such table (an empty database), or unreachable: alembic's careful path decides
        return False


def ensure_schema(engine: Engine) -> str:
    """Upgrade an empty or older database to head; refuse a newer one. Returns the revision."""
    if is_current(engine):
        return HEAD_REVISION
    rev = check_known(engine)
    head = head_revision()
    if rev != head:
        return upgrade(engine)
    return rev
