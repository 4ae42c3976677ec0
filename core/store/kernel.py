"""The store's transaction kernel: connections, one transaction per call, the lattice lock, audit.

Concurrency: every mutating call runs in one DB transaction that *starts* by bumping the
lattice's version (``UPDATE lattices SET version = version + 1 ... RETURNING``). That
statement takes the row/write lock first, so concurrent writers serialize on it and
everything they read afterwards is current; a caller that passes ``expected_version``
(the version it loaded) gets :class:`ConflictError` and nothing is written if someone
else changed the lattice in between. No lost updates, on SQLite and PostgreSQL alike.

:class:`StoreKernel` is the base of every part of :class:`core.store.store.Store`: it
opens the database and runs reads (:meth:`~StoreKernel._read`), plain writes
(:meth:`~StoreKernel._tx`) and lattice mutations (:meth:`~StoreKernel._write`), checks
admin rights and records them in the audit table, all with driver errors translated.
"""
from __future__ import annotations

import json
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.access import Actor, Permission, PermissionDenied, require
from core.errors import LatticeError, ValidationError
from core.store import db, recovery, replication, txlog
from core.store.crypto import ContentCipher
from core.store.errors import ConflictError, DatabaseUnavailable, NotFoundError
from core.store.models import utcnow
from core.store.tables import AUDIT, LATTICES

_NAME = re.compile(r"\w(?:[\w .:@+-]{0,198}[\w.:@+-])?")  # used with fullmatch: no trailing newline
CHUNK = 500  # ids per IN (...) list: well under SQLite's bound-parameter limit


@dataclass
class Tx:
    """A running mutation of one lattice (see :meth:`StoreKernel._write`)."""

    conn: Connection
    row: dict[str, Any]  # the lattice row, version already bumped

    @property
    def lid(self) -> int:
        return self.row["id"]

    @property
    def version(self) -> int:
        return self.row["version"]

    @property
    def t(self) -> float:
        return self.row["t"]


def chunks(seq: Sequence, n: int = CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def check_name(name: str) -> None:
    """The one rule for a lattice name, wherever a new one enters (create, import into a new
    lattice, restore under a new name: all go through :meth:`StoreKernel._write` with
    ``create``). 1-200 characters: letters, digits, space and ``. _ : @ + -``, starting with
    a letter or digit and not ending with a space; no control characters (a trailing
    newline too: the pattern is matched whole, not with ``$``); in Unicode NFC form (so
    the same visible name has one spelling)."""
    if not isinstance(name, str):
        raise ValidationError("lattice", f"name must be text, got {type(name).__name__}")
    if not _NAME.fullmatch(name) or unicodedata.normalize("NFC", name) != name:
        raise ValidationError("lattice", f"name {name!r} is not allowed; use 1-200 letters, digits, spaces or "
                              ". _ : @ + - (starting with a letter or digit, not ending with a space; no control "
                              "characters; Unicode in composed NFC form)")


def name_key(name: str) -> str:
    """What two lattice names are compared by for look-alikes: NFKC-normalised and casefolded
    (``Base``, ``BASE`` and the full-width ``ｂａｓｅ`` all give ``base``)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def plain_json(value: Any, field_name: str) -> Any:
    """``value`` as plain JSON data (numpy scalars/arrays converted); ValidationError otherwise."""
    def convert(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return x.tolist()
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, (datetime, Path)):
            return str(x)
        raise TypeError(f"{type(x).__name__} is not JSON data")
    try:
        return json.loads(json.dumps(value, default=convert, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(field_name, f"must be JSON data without NaN/inf ({exc})") from None


def emb_bytes(vec: np.ndarray) -> bytes:
    """An embedding as the ``gems.embedding`` column stores it: float32 little-endian bytes."""
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


class StoreKernel:
    """Connections and transactions of the Crystal Lattice DB (the base of :class:`Store`)."""

    READ_ONLY = False  # core.store.read_only.ReadOnlyStore: sessions that refuse writes (a replica)

    def __init__(self, engine: Engine, cipher: ContentCipher | None = None):
        self.engine = engine
        self.cipher = cipher if cipher is not None else ContentCipher.from_env()
        # holds writes after a failover or restore until the state is verified (core.store.recovery)
        self.recovery = recovery.RecoveryGate(engine)

    # ---------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, url: str | None = None, *, upgrade: bool = True, keys: Sequence[str] | None = None) -> "Store":
        """Connect to ``url`` (default: $LATTICE_DATABASE_URL or data/lattice.db).

        An empty or older database is upgraded to the code's schema (``upgrade=False``:
        refuse instead); a database with a newer schema is refused with SchemaError.
        ``keys``: Fernet keys for content encryption, newest first (default:
        $LATTICE_ENCRYPTION_KEYS; none = content stored as plain text).
        """
        cipher = ContentCipher(keys) if keys is not None else ContentCipher.from_env()
        engine = db.create_db_engine(url, read_only=cls.READ_ONLY)
        try:
            if upgrade:
                db.ensure_schema(engine)
            elif not db.is_current(engine) and db.check_known(engine) != db.head_revision():
                raise db.SchemaError("the database schema is not current; run `python -m core db upgrade`")
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, cipher)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def replication(self) -> replication.ReplicationStatus:
        """Where this store's database stands in streaming replication: a primary's standbys
        with their lag, or a standby's own lag (core.store.replication); role "none" on SQLite."""
        try:
            with self.engine.connect() as conn:
                return replication.replication_status(conn)
        except (DBAPIError, PoolTimeout) as exc:
            raise self._db_error(exc) from None

    def _db_error(self, exc: Exception) -> LatticeError:
        """A driver/pool error as the project's error: DatabaseUnavailable when the database
        cannot be reached (the caller may retry: nothing of this call was written)."""
        if isinstance(exc, PoolTimeout):
            return DatabaseUnavailable(f"the database {self.url} is overloaded (no free connection within the pool "
                                       "timeout); retry in a moment - nothing was written")
        orig = getattr(exc, "orig", None)
        detail = (str(orig if orig is not None else exc).strip().splitlines() or ["?"])[0]
        if isinstance(exc, DBAPIError) and self.engine.dialect.name == "sqlite" and "locked" in detail:
            return LatticeError(f"the database is busy ({detail}); retry - nothing was written")
        if isinstance(exc, (OperationalError, InterfaceError)) or getattr(exc, "connection_invalidated", False):
            return DatabaseUnavailable(
                f"the database {self.url} is unavailable ({detail}); check that it is running and reachable "
                "(LATTICE_DATABASE_URL), then retry - nothing was written")
        return LatticeError(f"database error: {detail}")

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A plain write transaction with driver errors translated (see :meth:`_db_error`)."""
        try:
            with self.engine.begin() as conn:
                self.recovery.before_write(self)  # after connecting: a new server is seen first
                yield conn
        except (DBAPIError, PoolTimeout) as exc:
            raise self._db_error(exc) from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """One consistent read transaction (SQLite: BEGIN snapshot; PostgreSQL: repeatable read)."""
        try:
            with self.engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        except (DBAPIError, PoolTimeout) as exc:
            raise self._db_error(exc) from None

    @contextmanager
    def _write(self, name: str, actor: Actor, permission: Permission, action: str,
               expected_version: int | None = None, create: dict[str, Any] | None = None) -> Iterator[Tx]:
        """Run a mutation of lattice ``name`` in one transaction, version bumped and locked first."""
        require(actor, permission, action)
        if create is not None:
            check_name(name)
        try:
            with self.engine.begin() as conn:
                self.recovery.before_write(self)
                row = self._bump(conn, name)
                if row is None and create is not None:
                    self._refuse_look_alike(conn, name)
                    conn.execute(insert(LATTICES).values(name=name, version=0, **create))
                    row = self._bump(conn, name)
                    txlog.append(conn, row["id"], name, "create_lattice", actor, row["t"], row["version"],
                                 after={"params": row["params"], "embedder": row["embedder"], "dim": row["dim"],
                                        "clock": row["clock"]})
                if row is None:
                    raise NotFoundError(self._unknown_lattice(conn, name))
                if expected_version is not None and row["version"] - 1 != int(expected_version):
                    raise ConflictError(
                        f"lattice {name!r} changed since you loaded it (your version {expected_version}, now "
                        f"{row['version'] - 1}); reload and apply your change again - nothing was written")
                yield Tx(conn, row)
        except IntegrityError as exc:
            detail = str(exc.orig).strip().splitlines()[0]
            if "unique" in detail.lower() or "duplicate" in detail.lower():
                raise ConflictError(f"conflicting concurrent change to lattice {name!r} ({detail}); retry") from None
            raise LatticeError(f"the database rejected the change to lattice {name!r}: {detail}") from None
        except (DBAPIError, PoolTimeout) as exc:
            raise self._db_error(exc) from None

    @staticmethod
    def _bump(conn: Connection, name: str) -> dict[str, Any] | None:
        if not isinstance(name, str) or "\x00" in name:
            return None  # never a lattice name (and PostgreSQL refuses NUL in a query)
        row = conn.execute(update(LATTICES).where(LATTICES.c.name == name)
                           .values(version=LATTICES.c.version + 1, updated_at=utcnow())
                           .returning(*LATTICES.c)).mappings().first()
        return dict(row) if row is not None else None

    @staticmethod
    def _refuse_look_alike(conn: Connection, name: str) -> None:
        """A new lattice may not differ from an existing one only by case or Unicode form."""
        key = name_key(name)
        for other in conn.execute(select(LATTICES.c.name)).scalars():
            if name_key(other) == key:
                raise ConflictError(f"lattice name {name!r} looks like the existing lattice {other!r} (names that "
                                    "differ only in case or Unicode form are refused); use that one or pick "
                                    "another name - nothing was written")

    @staticmethod
    def _unknown_lattice(conn: Connection, name: str) -> str:
        names = conn.execute(select(LATTICES.c.name).order_by(LATTICES.c.name)).scalars().all()
        return f"unknown lattice {name!r}; available: {', '.join(names) or 'none (import one or run `python -m core demo`)'}"

    def _lattice_row(self, conn: Connection, name: str) -> dict[str, Any]:
        if not isinstance(name, str) or "\x00" in name:
            raise NotFoundError(self._unknown_lattice(conn, name))
        row = conn.execute(select(LATTICES).where(LATTICES.c.name == name)).mappings().first()
        if row is None:
            raise NotFoundError(self._unknown_lattice(conn, name))
        return dict(row)

    # ------------------------------------------------------------- audit
    def _require_admin(self, actor: Actor, what: str, action: str, target: str = "") -> None:
        """require(ADMIN); a refused attempt is itself recorded in the audit log."""
        try:
            require(actor, Permission.ADMIN, what)
        except PermissionDenied:
            if isinstance(actor, Actor):
                try:
                    with self._tx() as conn:
                        self._audit(conn, actor, action, target, {}, outcome="denied")
                except LatticeError:
                    pass  # the refusal stands even if it cannot be recorded
            raise

    @staticmethod
    def _audit(conn: Connection, actor: Actor, action: str, target: str = "", details: dict | None = None,
               outcome: str = "ok") -> None:
        conn.execute(insert(AUDIT).values(wall_time=utcnow(), actor=actor.name, role=actor.role.value, action=action,
                                          target=str(target)[:500], outcome=outcome,
                                          details=plain_json(dict(details or {}), "details")))
