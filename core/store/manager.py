"""The Store (Gem Manager): lattices, gems, entanglements, log, runs, reflections, snapshots.

Concurrency: every mutating call runs in one DB transaction that *starts* by bumping the
lattice's version (``UPDATE lattices SET version = version + 1 ... RETURNING``). That
statement takes the row/write lock first, so concurrent writers serialize on it and
everything they read afterwards is current; a caller that passes ``expected_version``
(the version it loaded) gets :class:`ConflictError` and nothing is written if someone
else changed the lattice in between. No lost updates, on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

import io
import json
import math
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import (Connection, Engine, String, and_, bindparam, cast, delete, func, insert, or_, select,
                        update)
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.access import Actor, Permission, PermissionDenied, Role, require
from core.knowledge.embedders import DEFAULT_EMBEDDER, Embedder, embed_in_batches, get_embedder
from core.errors import LatticeError, ValidationError
from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.engine.trajectory import Trajectory, simulate
from core.store import snapshot_file as snap
from core.store import bulk, db, faults, txlog
from core.store import gem_files as gio
from core.store.crypto import ContentCipher
from core.store.errors import ConflictError, DatabaseUnavailable, EncryptionError, ImportFailed, ImportIssue, NotFoundError
from core.store.models import (AuditRow, EntanglementRow, GemRow, GemStateRow, LatticeRow, ReflectionRow, RunRow,
                     SnapshotRow, TransactionRow)

L = LatticeRow.__table__
G = GemRow.__table__
S = GemStateRow.__table__  # one state row per gem (gem_pk = gems.pk)
GS = G.join(S, S.c.gem_pk == G.c.pk)
E = EntanglementRow.__table__
T = TransactionRow.__table__
A = AuditRow.__table__
STATE = ("energy", "phase", "coherence", "uncertainty")
# columns of a gem as callers see it: content from gems, state from gem_states
_GEM_COLUMNS = {**{c.name: c for c in G.c}, **{c.name: c for c in S.c if c.name in STATE + ("last_observed",)},
                "state_version": S.c.version.label("state_version")}
EDITABLE = ("title", "content", "tags", "source") + STATE
CLOCK_ACTOR = Actor("clock", Role.ADMIN)  # wall-clock catch-up (time passing is not a user action)
_NAME = re.compile(r"^[\w][\w .:@+-]{0,199}$")
_CHUNK = 500  # ids per IN (...) list: well under SQLite's bound-parameter limit


# ---------------------------------------------------------------- records
@dataclass(frozen=True)
class LatticeInfo:
    """What a lattice records about itself (not its gems)."""

    name: str
    params: LatticeParams
    embedder: str
    dim: int
    time_unit: str
    clock: str
    t: float
    version: int
    created_at: datetime
    updated_at: datetime
    gems: int = 0  # active (not archived) gems
    archived: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params.to_dict(), "embedder": self.embedder, "dim": self.dim,
                "time_unit": self.time_unit, "clock": self.clock, "t": self.t, "version": self.version,
                "gems": self.gems, "archived": self.archived, "created_at": str(self.created_at),
                "updated_at": str(self.updated_at)}


@dataclass
class LoadedLattice:
    """A lattice's active gems as a :class:`Lattice` (``ids`` = gem ids, seq order) and its version.

    Modify ``lattice`` in memory and pass this object to :meth:`Store.save` to persist
    it; the save fails with ConflictError if the lattice changed since this load.
    """

    name: str
    lattice: Lattice
    version: int
    info: LatticeInfo
    store: "Store" = field(repr=False)
    # the state as stored at this version, and the gems' row keys: save() diffs against
    # them instead of reading 100k rows again (the version check proves they are current)
    _stored: Lattice | None = field(default=None, repr=False, compare=False)
    _pks: np.ndarray | None = field(default=None, repr=False, compare=False)

    def texts(self) -> pd.DataFrame:
        """id, title, content, tags, source of the loaded gems, in lattice order."""
        return self.store.gem_texts(self.name, self.lattice.ids)

    def embeddings(self) -> np.ndarray:
        """(N, dim) float32 embeddings in lattice order."""
        return self.store.embeddings(self.name, self.lattice.ids)


@dataclass
class ImportReport:
    lattice: str
    source: str
    imported: int
    gem_ids: list[str]
    edges: int
    skipped: list[ImportIssue]
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {"lattice": self.lattice, "source": self.source, "imported": self.imported, "edges": self.edges,
                "skipped": [vars(i) for i in self.skipped], "version": self.version}


@dataclass
class _Tx:
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


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _chunks(seq: Sequence, n: int = _CHUNK) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError("lattice", f"name {name!r} is not allowed; use 1-200 letters, digits, spaces or . _ : @ + - "
                              "(starting with a letter or digit)")


def _info(row: Any, gems: int = 0, archived: int = 0) -> LatticeInfo:
    r = row._mapping if hasattr(row, "_mapping") else row
    return LatticeInfo(r["name"], LatticeParams.from_dict(r["params"]), r["embedder"], r["dim"], r["time_unit"],
                       r["clock"], float(r["t"]), int(r["version"]), r["created_at"], r["updated_at"], gems, archived)


def _plain_json(value: Any, field_name: str) -> Any:
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


def _emb_bytes(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def _encode_frame(df: pd.DataFrame) -> bytes:
    """A DataFrame as compressed npz: numeric columns float32 (compact), others as text."""
    arrays = {"__columns__": np.array(list(map(str, df.columns)))}
    for k, col in enumerate(df.columns):
        s = df[col]
        arrays[f"c{k}"] = (s.to_numpy(np.float32) if pd.api.types.is_numeric_dtype(s)
                           else s.astype(str).to_numpy().astype(np.str_))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _decode_frame(blob: bytes) -> pd.DataFrame:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        cols = list(z["__columns__"])
        return pd.DataFrame({c: z[f"c{k}"] for k, c in enumerate(cols)})


class Store:
    """The Crystal Lattice DB. Open with :meth:`open`; every mutating call takes an Actor."""

    def __init__(self, engine: Engine, cipher: ContentCipher | None = None):
        self.engine = engine
        self.cipher = cipher if cipher is not None else ContentCipher.from_env()

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
        engine = db.create_db_engine(url)
        try:
            if upgrade:
                db.ensure_schema(engine)
            elif db.check_known(engine) != db.head_revision():
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
               expected_version: int | None = None, create: dict[str, Any] | None = None) -> Iterator[_Tx]:
        """Run a mutation of lattice ``name`` in one transaction, version bumped and locked first."""
        require(actor, permission, action)
        if create is not None:
            _check_name(name)
        try:
            with self.engine.begin() as conn:
                row = self._bump(conn, name)
                if row is None and create is not None:
                    conn.execute(insert(L).values(name=name, version=0, **create))
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
                yield _Tx(conn, row)
        except IntegrityError as exc:
            detail = str(exc.orig).strip().splitlines()[0]
            if "unique" in detail.lower() or "duplicate" in detail.lower():
                raise ConflictError(f"conflicting concurrent change to lattice {name!r} ({detail}); retry") from None
            raise LatticeError(f"the database rejected the change to lattice {name!r}: {detail}") from None
        except (DBAPIError, PoolTimeout) as exc:
            raise self._db_error(exc) from None

    @staticmethod
    def _bump(conn: Connection, name: str) -> dict[str, Any] | None:
        row = conn.execute(update(L).where(L.c.name == name)
                           .values(version=L.c.version + 1, updated_at=_now()).returning(*L.c)).mappings().first()
        return dict(row) if row is not None else None

    @staticmethod
    def _unknown_lattice(conn: Connection, name: str) -> str:
        names = conn.execute(select(L.c.name).order_by(L.c.name)).scalars().all()
        return f"unknown lattice {name!r}; available: {', '.join(names) or 'none (import one or run `python -m core demo`)'}"

    def _lattice_row(self, conn: Connection, name: str) -> dict[str, Any]:
        row = conn.execute(select(L).where(L.c.name == name)).mappings().first()
        if row is None:
            raise NotFoundError(self._unknown_lattice(conn, name))
        return dict(row)

    # ---------------------------------------------------------- lattices
    def list_lattices(self) -> list[LatticeInfo]:
        with self._read() as conn:
            counts = {(lid, bool(arch)): n for lid, arch, n in conn.execute(
                select(G.c.lattice_id, G.c.archived, func.count()).group_by(G.c.lattice_id, G.c.archived))}
            return [_info(r, counts.get((r.id, False), 0), counts.get((r.id, True), 0))
                    for r in conn.execute(select(L).order_by(L.c.name))]

    def exists(self, name: str) -> bool:
        with self._read() as conn:
            return conn.execute(select(L.c.id).where(L.c.name == name)).first() is not None

    def info(self, name: str) -> LatticeInfo:
        self._catch_up(name)
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            counts = dict(conn.execute(select(G.c.archived, func.count()).where(G.c.lattice_id == row["id"])
                                       .group_by(G.c.archived)).all())
            return _info(row, counts.get(False, 0), counts.get(True, 0))

    def version(self, name: str) -> int:
        """The lattice's current version (after a wall-clock catch-up): a cheap cache key."""
        self._catch_up(name)
        with self._read() as conn:
            return int(self._lattice_row(conn, name)["version"])

    @staticmethod
    def _lattice_values(params: LatticeParams | dict | None, embedder: str, clock: str) -> dict[str, Any]:
        p = params if isinstance(params, LatticeParams) else LatticeParams.from_dict(params or {})
        if clock not in ("manual", "wall"):
            raise ValidationError("clock", f"got {clock!r}; allowed: manual, wall")
        emb = get_embedder(embedder)
        return {"params": p.to_dict(), "embedder": emb.name, "dim": emb.dim, "time_unit": p.time_unit,
                "clock": clock, "t": 0.0, "wall_anchor": time.time() if clock == "wall" else None}

    def create_lattice(self, name: str, actor: Actor, params: LatticeParams | dict | None = None,
                       embedder: str = DEFAULT_EMBEDDER, clock: str = "manual") -> LatticeInfo:
        """Create an empty lattice; LatticeError if the name is taken or invalid."""
        _check_name(name)
        if self.exists(name):
            raise LatticeError(f"lattice {name!r} already exists; pick another name")
        with self._write(name, actor, Permission.EDIT, "create a lattice",
                         create=self._lattice_values(params, embedder, clock)) as tx:
            if tx.version != 1:
                raise ConflictError(f"lattice {name!r} was created concurrently; pick another name")
        return self.info(name)

    def delete_lattice(self, name: str, actor: Actor) -> None:
        """Delete a lattice with its gems, log, reflections (admin)."""
        self._require_admin(actor, "delete a lattice", "lattice.delete", name)
        with self._write(name, actor, Permission.ADMIN, "delete a lattice") as tx:
            tx.conn.execute(delete(L).where(L.c.id == tx.lid))
            self._audit(tx.conn, actor, "lattice.delete", name, {"version": tx.version - 1})

    def update_params(self, name: str, params: LatticeParams | dict, actor: Actor,
                      expected_version: int | None = None) -> LatticeInfo:
        """Replace the lattice's parameters (a dict may be partial: it updates the current ones)."""
        with self._write(name, actor, Permission.EDIT, "change lattice parameters", expected_version) as tx:
            old = LatticeParams.from_dict(tx.row["params"])
            new = params if isinstance(params, LatticeParams) else old.replace(**params)
            tx.conn.execute(update(L).where(L.c.id == tx.lid).values(params=new.to_dict(), time_unit=new.time_unit))
            txlog.append(tx.conn, tx.lid, name, "params", actor, tx.t, tx.version,
                         before={"params": old.to_dict()}, after={"params": new.to_dict()})
        return self.info(name)

    def set_clock(self, name: str, clock: str, actor: Actor) -> LatticeInfo:
        """``manual`` (advanced only by simulate/advance) or ``wall`` (follows real time)."""
        if clock not in ("manual", "wall"):
            raise ValidationError("clock", f"got {clock!r}; allowed: manual, wall")
        with self._write(name, actor, Permission.EDIT, "change the lattice clock") as tx:
            tx.conn.execute(update(L).where(L.c.id == tx.lid).values(
                clock=clock, wall_anchor=time.time() if clock == "wall" else None))
            txlog.append(tx.conn, tx.lid, name, "clock", actor, tx.t, tx.version,
                         before={"clock": tx.row["clock"]}, after={"clock": clock})
        return self.info(name)

    # ------------------------------------------------------- state arrays
    @staticmethod
    def _load_state(conn: Connection, row: dict[str, Any]) -> tuple[Lattice, np.ndarray]:
        """Bulk SELECT of the active gems' state into arrays (seq order) and their edges."""
        # numbers as arrays, ids as a list: two statements in the caller's transaction
        # (a snapshot when reading; the lattice row is locked when writing)
        active = f"WHERE g.lattice_id = {int(row['id'])} AND NOT g.archived ORDER BY g.seq"
        state_cols = ", ".join(f"s.{c}" for c in STATE)
        pks, *state = bulk.select_columns(
            conn, f"SELECT CAST(g.pk AS BIGINT), {state_cols} FROM {G.name} g JOIN {S.name} s ON s.gem_pk = g.pk "
                  f"{active}", ["i8"] + ["f8"] * len(STATE))
        ids = bulk.select_columns(conn, f"SELECT g.gem_id FROM {G.name} g {active}", [object])[0].tolist()
        lat = Lattice(*state, params=LatticeParams.from_dict(row["params"]), ids=ids, t=float(row["t"]))
        edges = conn.execute(select(E.c.gem_a, E.c.gem_b, E.c.weight).where(E.c.lattice_id == row["id"])).all()
        if edges and len(pks):
            a, b, w = (np.array(c) for c in zip(*edges))
            order = np.argsort(pks)
            sorted_pks = pks[order]

            def position(x: np.ndarray) -> np.ndarray:
                k = np.clip(np.searchsorted(sorted_pks, x), 0, len(pks) - 1)
                return np.where(sorted_pks[k] == x, order[k], -1)

            i, j = position(a), position(b)
            keep = (i >= 0) & (j >= 0)  # edges to archived gems stay stored but out of the lattice
            lat.set_edges(i[keep], j[keep], w[keep].astype(np.float64))
        return lat, pks

    @staticmethod
    def _save_state(conn: Connection, pks: np.ndarray, lat: Lattice, idx: np.ndarray | None = None) -> None:
        """Bulk UPDATE of the state rows of the gems at positions ``idx`` (all if None)."""
        idx = np.arange(len(pks)) if idx is None else np.asarray(idx, dtype=np.int64)
        if idx.size:
            bulk.update_by_key(conn, S, "gem_pk", pks[idx], {s: getattr(lat, s)[idx] for s in STATE}, bump="version")

    def _positions(self, lat: Lattice, gem_ids: Sequence[str], name: str) -> np.ndarray:
        pos = {g: i for i, g in enumerate(lat.ids)}
        missing = [g for g in gem_ids if g not in pos]
        if missing:
            raise NotFoundError(f"gem {missing[0]!r} is not an active gem of lattice {name!r} "
                                "(unknown, deleted or archived)")
        return np.array([pos[g] for g in gem_ids], dtype=np.int64)

    def load(self, name: str) -> LoadedLattice:
        """The lattice's active gems as a Lattice (a wall-clock lattice is first evolved to now)."""
        self._catch_up(name)
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            lat, pks = self._load_state(conn, row)
        return LoadedLattice(name, lat, int(row["version"]), _info(row, len(lat)), self, lat.copy(), pks)

    def save(self, loaded: LoadedLattice, actor: Actor) -> LoadedLattice:
        """Persist an in-memory change of ``loaded.lattice`` (state, edges, params, t).

        Optimistic: ConflictError (nothing written) if the lattice changed since the load.
        Logged as an ``edit`` of the changed gems (exact values, so replay reproduces it).
        """
        new = loaded.lattice
        with self._write(loaded.name, actor, Permission.EDIT, "save the lattice", loaded.version) as tx:
            if loaded._stored is not None and loaded._pks is not None:
                cur, pks = loaded._stored, loaded._pks
            else:
                cur, pks = self._load_state(tx.conn, tx.row)
            if list(cur.ids) != list(new.ids):
                raise ConflictError("the loaded lattice's gems differ from the stored ones; reload")
            changed = np.flatnonzero(np.any([getattr(cur, s) != getattr(new, s) for s in STATE], axis=0)) \
                if len(cur) else np.zeros(0, dtype=np.int64)
            if new.params != cur.params:
                tx.conn.execute(update(L).where(L.c.id == tx.lid).values(params=new.params.to_dict(),
                                                                         time_unit=new.params.time_unit))
                txlog.append(tx.conn, tx.lid, loaded.name, "params", actor, tx.t, tx.version,
                             before={"params": cur.params.to_dict()}, after={"params": new.params.to_dict()})
            if changed.size or new.t != cur.t:
                self._save_state(tx.conn, pks, new, changed)
                tx.conn.execute(update(L).where(L.c.id == tx.lid).values(t=float(new.t)))
                ids = [new.ids[i] for i in changed]
                txlog.append(tx.conn, tx.lid, loaded.name, "edit", actor, new.t, tx.version, ids,
                             before={s: getattr(cur, s)[changed] for s in STATE},
                             after={s: getattr(new, s)[changed] for s in STATE})
            self._save_edge_diff(tx, loaded.name, actor, cur, new, pks)
            version = tx.version
        return LoadedLattice(loaded.name, new, version, loaded.info, self, new.copy(), pks)

    # ---------------------------------------------------------- dynamics
    def _catch_up(self, name: str) -> None:
        """Evolve a wall-clock lattice to now (no-op for manual lattices)."""
        with self._read() as conn:
            row = conn.execute(select(L.c.clock, L.c.wall_anchor).where(L.c.name == name)).first()
        if row is None or row.clock != "wall":
            return
        self._evolve(name, CLOCK_ACTOR, 0.0, wall=True)

    def _evolve(self, name: str, actor: Actor, horizon: float, step: float | None = None,
                params: LatticeParams | None = None, progress: Callable[[float], None] | None = None,
                expected_version: int | None = None, wall: bool = False) -> tuple[Trajectory | None, LatticeInfo]:
        with self._write(name, actor, Permission.EDIT, "advance the lattice clock", expected_version) as tx:
            now = time.time()
            if wall:  # elapsed wall time, measured under the lock (concurrent readers catch up once)
                unit = LatticeParams.from_dict(tx.row["params"]).time_unit_seconds
                horizon = (now - (tx.row["wall_anchor"] or now)) / unit
                if horizon <= 0:
                    return None, _info(tx.row)
                step = horizon
            lat, pks = self._load_state(tx.conn, tx.row)
            if params is not None:
                lat.params = params
            horizon = float(horizon)
            if not math.isfinite(horizon) or horizon < 0:
                raise ValidationError("t", f"got {horizon!r}; the time span must be a finite number >= 0")
            step = float(step if step is not None else lat.params.dt)
            if horizon == 0:
                step = 1.0  # no step is taken; any positive value keeps the grid valid
            t0, c0 = lat.t, lat.coherence.copy()
            traj = simulate(lat, horizon, dt=step, inplace=True, progress=progress)
            self._save_state(tx.conn, pks, lat)
            values: dict[str, Any] = {"t": float(lat.t)}
            if tx.row["clock"] == "wall":
                values["wall_anchor"] = now
            tx.conn.execute(update(L).where(L.c.id == tx.lid).values(**values))
            txlog.append(tx.conn, tx.lid, name, "evolve", actor, lat.t, tx.version, [], after={
                "t0": t0, "horizon": horizon, "step": step, "params": lat.params.to_dict(), "gems": len(lat),
                "mean_coherence_delta": float((lat.coherence - c0).mean()) if len(lat) else 0.0})
            info = _info({**tx.row, "t": lat.t}, len(lat))
        return traj, info

    def advance(self, name: str, dt: float, actor: Actor, *, step: float | None = None,
                expected_version: int | None = None) -> LatticeInfo:
        """Evolve the lattice by ``dt`` time units (in one step unless ``step``), persist, log."""
        return self._evolve(name, actor, dt, step=dt if step is None else step, expected_version=expected_version)[1]

    def simulate(self, name: str, horizon: float, actor: Actor, *, dt: float | None = None,
                 params: LatticeParams | None = None, progress: Callable[[float], None] | None = None,
                 expected_version: int | None = None) -> tuple[Trajectory, LatticeInfo]:
        """Evolve for ``horizon`` in steps of ``dt`` (default: the dt parameter), recording the trajectory.

        ``params`` overrides the lattice's parameters for this run only (recorded in the log).
        """
        self._catch_up(name)
        return self._evolve(name, actor, horizon, dt, params, progress, expected_version)  # type: ignore[return-value]

    def _observe_tx(self, tx: _Tx, name: str, lat: Lattice, pks: np.ndarray, gem_ids: Sequence[str],
                    actor: Actor, strength: float | None) -> dict[str, Any]:
        pos = self._positions(lat, gem_ids, name)
        obs = lat.observe(pos, strength)
        self._save_state(tx.conn, pks, lat, obs.indices)
        if pos.size:
            tx.conn.execute(update(S).where(S.c.gem_pk.in_(pks[pos].tolist())).values(last_observed=float(lat.t)))
        ids = [lat.ids[i] for i in obs.indices]
        txlog.append(tx.conn, tx.lid, name, "observe", actor, lat.t, tx.version, ids,
                     before={"coherence": obs.coherence_before.tolist(), "uncertainty": obs.uncertainty_before.tolist()},
                     after={"coherence": obs.coherence_after.tolist(), "uncertainty": obs.uncertainty_after.tolist(),
                            "observed": list(dict.fromkeys(gem_ids)), "strength": obs.strength.tolist()},
                     energy=lat.energy[obs.indices])
        return {"touched": ids, "strength": obs.strength.tolist(),
                "coherence_before": obs.coherence_before.tolist(), "coherence_after": obs.coherence_after.tolist()}

    def observe(self, name: str, gem_ids: Sequence[str], actor: Actor, strength: float | None = None,
                expected_version: int | None = None) -> dict[str, Any]:
        """Observe gems (they and their entangled partners re-cohere); persist and log."""
        self._catch_up(name)
        with self._write(name, actor, Permission.REFLECT, "observe gems", expected_version) as tx:
            lat, pks = self._load_state(tx.conn, tx.row)
            out = self._observe_tx(tx, name, lat, pks, list(gem_ids), actor, strength)
            out["version"] = tx.version
        return out

    def apply_reflection(self, name: str, gem_ids_used: Sequence[str], actor: Actor, *,
                         strength: float | None = None, increment: float = 0.1,
                         reflection: dict[str, Any] | None = None) -> dict[str, Any]:
        """The state update after a reflection, in one transaction: observe the used gems,
        entangle (or strengthen) every co-used pair by ``increment``, log both, and insert
        the reflection record if given (keys of :meth:`record_reflection`)."""
        self._catch_up(name)
        used = list(dict.fromkeys(gem_ids_used))
        with self._write(name, actor, Permission.REFLECT, "reflect") as tx:
            lat, pks = self._load_state(tx.conn, tx.row)
            out = self._observe_tx(tx, name, lat, pks, used, actor, strength)
            before = lat.copy()
            if len(used) > 1:
                lat.strengthen(self._positions(lat, used, name), increment)
                self._save_edge_diff(tx, name, actor, before, lat, pks)
            out["entangled"] = len(used) * (len(used) - 1) // 2
            if reflection is not None:
                out["reflection_id"] = self._insert_reflection(tx, actor, **reflection)
            out["version"] = tx.version
        return out

    # ------------------------------------------------------ entanglements
    def _save_edge_diff(self, tx: _Tx, name: str, actor: Actor, old: Lattice, new: Lattice, pks: np.ndarray) -> int:
        """Write the edges that differ between two lattices over the same gems, and log them."""
        oi, oj, ow = old.edge_arrays()
        ni, nj, nw = new.edge_arrays()
        before = {(int(a), int(b)): float(w) for a, b, w in zip(oi, oj, ow)}
        after = {(int(a), int(b)): float(w) for a, b, w in zip(ni, nj, nw)}
        keys = sorted(k for k in before.keys() | after.keys() if before.get(k, 0.0) != after.get(k, 0.0))
        if not keys:
            return 0
        pk_pairs = [(min(int(pks[i]), int(pks[j])), max(int(pks[i]), int(pks[j]))) for i, j in keys]
        tx.conn.execute(delete(E).where(E.c.gem_a == bindparam("a"), E.c.gem_b == bindparam("b")),
                        [{"a": a, "b": b} for a, b in pk_pairs])
        rows = [{"lattice_id": tx.lid, "gem_a": a, "gem_b": b, "weight": after[k]}
                for (a, b), k in zip(pk_pairs, keys) if after.get(k, 0.0) > 0]
        if rows:
            tx.conn.execute(insert(E), rows)
        ids = new.ids
        txlog.append(tx.conn, tx.lid, name, "entangle", actor, new.t, tx.version,
                     sorted({ids[i] for k in keys for i in k}),
                     before={"pairs": [[ids[i], ids[j], before.get((i, j), 0.0)] for i, j in keys]},
                     after={"pairs": [[ids[i], ids[j], after.get((i, j), 0.0)] for i, j in keys]})
        return len(keys)

    def entangle(self, name: str, gem_a: str, gem_b: str, weight: float, actor: Actor) -> None:
        """Add an entanglement or set its weight (in (0, 1])."""
        with self._write(name, actor, Permission.EDIT, "entangle gems") as tx:
            lat, pks = self._load_state(tx.conn, tx.row)
            i, j = self._positions(lat, [gem_a, gem_b], name)
            before = lat.copy()
            lat.add_edge(i, j, weight)
            self._save_edge_diff(tx, name, actor, before, lat, pks)

    def disentangle(self, name: str, gem_a: str, gem_b: str, actor: Actor) -> None:
        """Remove the entanglement between two gems."""
        with self._write(name, actor, Permission.EDIT, "remove an entanglement") as tx:
            lat, pks = self._load_state(tx.conn, tx.row)
            i, j = self._positions(lat, [gem_a, gem_b], name)
            before = lat.copy()
            lat.remove_edge(i, j)
            self._save_edge_diff(tx, name, actor, before, lat, pks)

    def entanglements(self, name: str) -> pd.DataFrame:
        """source, target, weight of every stored edge (archived gems' edges included)."""
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            ga, gb = G.alias("ga"), G.alias("gb")
            rows = conn.execute(select(ga.c.gem_id, gb.c.gem_id, E.c.weight)
                                .join(ga, ga.c.pk == E.c.gem_a).join(gb, gb.c.pk == E.c.gem_b)
                                .where(E.c.lattice_id == lid).order_by(ga.c.seq, gb.c.seq)).all()
        return pd.DataFrame(rows, columns=["source", "target", "weight"])

    # ---------------------------------------------------------------- gems
    def _embedder_for(self, row_or_info: Any) -> Embedder:
        name = row_or_info["embedder"] if isinstance(row_or_info, dict) else row_or_info.embedder
        dim = row_or_info["dim"] if isinstance(row_or_info, dict) else row_or_info.dim
        emb = get_embedder(name)
        if emb.dim != dim:
            raise LatticeError(f"embedder {name!r} now has dimension {emb.dim}, the lattice was built with {dim}; "
                               "mixing embeddings is an error")
        return emb

    def _existing_ids(self, conn: Connection, lid: int, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the lattice already has."""
        if len(ids) <= _CHUNK:
            return set(conn.execute(select(G.c.gem_id).where(G.c.lattice_id == lid, G.c.gem_id.in_(list(ids))))
                       .scalars()) if ids else set()
        # many ids (an import): one pass over the lattice's ids beats hundreds of IN lists
        stored = bulk.select_columns(conn, f"SELECT gem_id FROM {G.name} WHERE lattice_id = {int(lid)}", [object])[0]
        return set(ids).intersection(stored.tolist())

    def _insert_gems(self, tx: _Tx, name: str, actor: Actor, records: list[gio.GemRecord], vectors: np.ndarray,
                     kind: str, edges: Sequence[gio.EdgeRecord] = ()) -> list[str]:
        dup = self._existing_ids(tx.conn, tx.lid, [r.id for r in records if r.id])
        if dup:
            raise ConflictError(f"gem id {sorted(dup)[0]!r} already exists in lattice {name!r}; nothing was written")
        for r in records:
            if r.id is None:
                r.id = f"g-{uuid.uuid4().hex[:12]}"
        start = (tx.conn.execute(select(func.max(G.c.seq)).where(G.c.lattice_id == tx.lid)).scalar() or 0) + 1
        n, now = len(records), _now()
        gems = {"lattice_id": [tx.lid] * n, "gem_id": [r.id for r in records], "seq": list(range(start, start + n)),
                "title": [r.title for r in records], "content": [self.cipher.encrypt(r.content) for r in records],
                "tags": [r.tags for r in records], "source": [r.source for r in records],
                "embedding": [_emb_bytes(v) for v in vectors], "created_at": [now] * n, "updated_at": [now] * n,
                "archived": [False] * n, "version": [1] * n,
                **{s: np.array([getattr(r, s) for r in records], dtype=np.float64) for s in STATE},
                "last_observed": [None] * n, "state_version": [1] * n}
        self._insert_gem_rows(tx.conn, tx.lid, gems, "import.batch")
        edge_rows = []
        if edges:
            ids = {e.source for e in edges} | {e.target for e in edges}
            pk_of: dict[str, int] = {}
            for chunk in _chunks(sorted(ids)):
                pk_of.update(dict(tx.conn.execute(select(G.c.gem_id, G.c.pk).where(
                    G.c.lattice_id == tx.lid, G.c.gem_id.in_(chunk))).all()))
            best: dict[tuple[int, int], tuple[float, str, str]] = {}
            for e in edges:
                a, b = pk_of[e.source], pk_of[e.target]
                best[(min(a, b), max(a, b))] = (e.weight, e.source, e.target)
            tx.conn.execute(delete(E).where(E.c.gem_a == bindparam("a"), E.c.gem_b == bindparam("b")),
                            [{"a": a, "b": b} for a, b in best])
            tx.conn.execute(insert(E), [{"lattice_id": tx.lid, "gem_a": a, "gem_b": b, "weight": w}
                                        for (a, b), (w, _, _) in best.items()])
            edge_rows = [[s, d, w] for (w, s, d) in best.values()]
        txlog.append(tx.conn, tx.lid, name, kind, actor, tx.t, tx.version, gems["gem_id"], after={
            "gems": {"id": gems["gem_id"], "seq": np.array(gems["seq"], dtype=np.int64), **{s: gems[s] for s in STATE}},
            "edges": edge_rows})
        return [r.id for r in records]

    @staticmethod
    def _insert_gem_rows(conn: Connection, lid: int, gems: dict[str, Sequence[Any]], checkpoint: str) -> list[int]:
        """Insert gems of lattice ``lid`` in bulk from columns (every gems column but ``pk``,
        the state columns and ``state_version``): content rows first, then their state
        rows, linked through ``seq``. Returns the new rows' primary keys in order."""
        if not len(gems["seq"]):
            return []
        content = [c.name for c in G.c if c.name != "pk"]
        bulk.insert_rows(conn, G, content, zip(*(gems[k] for k in content)), checkpoint)
        first = min(gems["seq"])
        pk_of = dict(conn.execute(select(G.c.seq, G.c.pk).where(G.c.lattice_id == lid, G.c.seq >= first)).all())
        pks = [pk_of[q] for q in gems["seq"]]
        state = [*(np.asarray(gems[s], dtype=np.float64).tolist() for s in STATE), gems["last_observed"],
                 gems["state_version"]]
        bulk.insert_rows(conn, S, ["gem_pk", *STATE, "last_observed", "version"], zip(pks, *state), checkpoint)
        return pks

    def _analyze_after_bulk(self, rows: int) -> None:
        """Refresh PostgreSQL's planner statistics after a bulk write (as after any bulk load):
        with stale ones the next load of a fresh 100k-gem lattice took a nested-loop plan."""
        if rows < 10_000 or self.engine.dialect.name != "postgresql":
            return
        try:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"ANALYZE {G.name}, {S.name}")
        except DBAPIError:
            pass  # statistics are an optimisation; autovacuum refreshes them later anyway

    def add_gem(self, name: str, actor: Actor, content: str, *, id: str | None = None, title: str = "",
                tags: Sequence[str] | None = None, source: str = "", energy: float = 1.0, phase: float = 0.0,
                coherence: float = 1.0, uncertainty: float = 0.1) -> str:
        """Create a gem (embedded with the lattice's embedder); returns its id."""
        require(actor, Permission.EDIT, "add a gem")
        rec = gio.record_or_error({"id": id, "title": title, "content": content, "tags": list(tags or []),
                                   "source": source, "energy": energy, "phase": phase, "coherence": coherence,
                                   "uncertainty": uncertainty})
        emb = self._embedder_for(self.info(name))
        vec = emb.embed([rec.content])
        with self._write(name, actor, Permission.EDIT, "add a gem") as tx:
            return self._insert_gems(tx, name, actor, [rec], vec, "create")[0]

    _GEM_COLS = ("gem_id", "title", "content", "tags", "source") + STATE + (
        "last_observed", "archived", "created_at", "updated_at", "version", "state_version")

    def _gem_dict(self, r: Any) -> dict[str, Any]:
        d = {k: r[k] for k in self._GEM_COLS}
        d["id"] = d.pop("gem_id")
        d["content"] = self.cipher.decrypt(d["content"])
        return d

    def get_gem(self, name: str, gem_id: str) -> dict[str, Any]:
        """One gem's fields and state (no embedding)."""
        self._catch_up(name)
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            r = conn.execute(select(*[_GEM_COLUMNS[k] for k in self._GEM_COLS]).select_from(GS)
                             .where(G.c.lattice_id == lid, G.c.gem_id == gem_id)).mappings().first()
        if r is None:
            raise NotFoundError(f"no gem {gem_id!r} in lattice {name!r}")
        return self._gem_dict(r)

    def _gem_for_update(self, tx: _Tx, name: str, gem_id: str, expected_version: int | None) -> dict[str, Any]:
        r = tx.conn.execute(select(*_GEM_COLUMNS.values()).select_from(GS)
                            .where(G.c.lattice_id == tx.lid, G.c.gem_id == gem_id)).mappings().first()
        if r is None:
            raise NotFoundError(f"no gem {gem_id!r} in lattice {name!r}")
        if expected_version is not None and r["version"] != int(expected_version):
            raise ConflictError(f"gem {gem_id!r} changed since you read it (your version {expected_version}, now "
                                f"{r['version']}); reload it and apply your change again - nothing was written")
        return dict(r)

    def update_gem(self, name: str, gem_id: str, actor: Actor, *, expected_version: int | None = None,
                   expected_state_version: int | None = None, **changes: Any) -> dict[str, Any]:
        """Edit a gem's fields (title, content, tags, source, energy, phase, coherence, uncertainty).

        ``expected_version``: the content row version (``version``) you read;
        ``expected_state_version``: the ``state_version`` you read. ConflictError (nothing
        written) if the one given changed. Evolutions move only the state version, so a
        title edit does not conflict with the clock. Changing content re-embeds it.
        Returns the updated gem.
        """
        require(actor, Permission.EDIT, "edit a gem")
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise ValidationError(unknown[0], f"not an editable gem field; editable: {', '.join(EDITABLE)}")
        current = self.get_gem(name, gem_id)
        merged = {k: current[k] for k in EDITABLE}
        merged.update(changes)
        rec = gio.record_or_error({**merged, "id": gem_id})
        values = {k: getattr(rec, k) for k in changes}
        if "content" in values:
            values["embedding"] = _emb_bytes(self._embedder_for(self.info(name)).embed([rec.content])[0])
            values["content"] = self.cipher.encrypt(rec.content)  # the log keeps it encrypted too
        with self._write(name, actor, Permission.EDIT, "edit a gem") as tx:
            r = self._gem_for_update(tx, name, gem_id, expected_version)
            if expected_state_version is not None and r["state_version"] != int(expected_state_version):
                raise ConflictError(f"the state of gem {gem_id!r} changed since you read it (your state version "
                                    f"{expected_state_version}, now {r['state_version']}); reload it and apply your "
                                    "change again - nothing was written")
            content = {k: v for k, v in values.items() if k not in STATE}
            state = {k: v for k, v in values.items() if k in STATE}
            if content:
                tx.conn.execute(update(G).where(G.c.pk == r["pk"]).values(
                    **content, version=G.c.version + 1, updated_at=_now()))
            if state:
                tx.conn.execute(update(S).where(S.c.gem_pk == r["pk"]).values(**state, version=S.c.version + 1))
            keys = [k for k in EDITABLE if k in changes]
            txlog.append(tx.conn, tx.lid, name, "edit", actor, tx.t, tx.version, [gem_id],
                         before={k: [r[k]] for k in keys}, after={k: [values[k]] for k in keys})
        return self.get_gem(name, gem_id)

    def archive_gem(self, name: str, gem_id: str, actor: Actor) -> None:
        """Take a gem out of the lattice (kept, frozen; :meth:`restore_gem` brings it back)."""
        self._set_archived(name, gem_id, actor, True)

    def restore_gem(self, name: str, gem_id: str, actor: Actor) -> None:
        """Bring an archived gem back into the lattice with the state it was archived with."""
        self._set_archived(name, gem_id, actor, False)

    def _set_archived(self, name: str, gem_id: str, actor: Actor, archived: bool) -> None:
        verb = "archive" if archived else "unarchive"
        with self._write(name, actor, Permission.EDIT, f"{verb} a gem") as tx:
            r = self._gem_for_update(tx, name, gem_id, None)
            if r["archived"] == archived:
                raise LatticeError(f"gem {gem_id!r} is {'already' if archived else 'not'} archived")
            tx.conn.execute(update(G).where(G.c.pk == r["pk"]).values(
                archived=archived, version=G.c.version + 1, updated_at=_now()))
            state = {s: [r[s]] for s in STATE}
            txlog.append(tx.conn, tx.lid, name, verb, actor, tx.t, tx.version, [gem_id],
                         before=state if archived else None, after=None if archived else state)

    def delete_gem(self, name: str, gem_id: str, actor: Actor) -> None:
        """Delete a gem and its entanglements for good (the log keeps its last values)."""
        with self._write(name, actor, Permission.EDIT, "delete a gem") as tx:
            r = self._gem_for_update(tx, name, gem_id, None)
            tx.conn.execute(delete(G).where(G.c.pk == r["pk"]))
            txlog.append(tx.conn, tx.lid, name, "delete", actor, tx.t, tx.version, [gem_id],
                         before={k: r[k] for k in ("title", "content", "tags", "source") + STATE + ("seq",)})

    def list_gems(self, name: str, *, tag: str | None = None, text: str | None = None,
                  coherence_min: float | None = None, coherence_max: float | None = None,
                  archived: bool | None = False, page: int = 1, page_size: int = 50) -> tuple[pd.DataFrame, int]:
        """A page of gems (seq order) matching the filters, and the total number matching.

        ``archived``: False = active only, True = archived only, None = both. ``text``
        matches title or content, case-insensitively. ``page`` starts at 1.
        """
        if (isinstance(page, bool) or isinstance(page_size, bool) or not isinstance(page, (int, np.integer))
                or not isinstance(page_size, (int, np.integer)) or page < 1 or not 1 <= page_size <= 10_000):
            raise ValidationError("page", f"page must be a whole number >= 1 and page_size one in [1, 10000], "
                                  f"got {page!r}, {page_size!r}")
        for field_name, value in (("tag", tag), ("text", text)):
            if value is not None and not isinstance(value, str):
                raise ValidationError(field_name, f"must be text, got {type(value).__name__}")
        bounds = {}
        for field_name, value in (("coherence_min", coherence_min), ("coherence_max", coherence_max)):
            if value is None:
                continue
            try:
                bounds[field_name] = float(value)
            except (TypeError, ValueError, OverflowError):
                bounds[field_name] = math.nan
            if isinstance(value, bool) or not math.isfinite(bounds[field_name]):
                raise ValidationError(field_name, f"must be a finite number (coherence is in [0, 1]), got {value!r}")
        coherence_min, coherence_max = bounds.get("coherence_min"), bounds.get("coherence_max")
        if archived is not None and not isinstance(archived, (bool, np.bool_)):
            raise ValidationError("archived", f"must be True, False or None (both), got {archived!r}")
        page_size = int(page_size)
        self._catch_up(name)
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            cond = [G.c.lattice_id == lid]
            if archived is not None:
                cond.append(G.c.archived.is_(bool(archived)))
            if tag:
                pattern = gio.json.dumps(tag).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                cond.append(cast(G.c.tags, String).like(f"%{pattern}%", escape="\\"))
            in_python = bool(text) and self.cipher.enabled  # encrypted content: match after decryption
            if text and not in_python:
                pat = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                cond.append(or_(G.c.title.ilike(pat, escape="\\"), G.c.content.ilike(pat, escape="\\")))
            if coherence_min is not None:
                cond.append(S.c.coherence >= float(coherence_min))
            if coherence_max is not None:
                cond.append(S.c.coherence <= float(coherence_max))
            where = and_(*cond)
            cols = select(*[_GEM_COLUMNS[k] for k in self._GEM_COLS]).select_from(GS).where(where).order_by(G.c.seq)
            if in_python:
                needle = str(text).casefold()
                found = [d for d in map(self._gem_dict, conn.execute(cols).mappings())
                         if needle in (d["title"] or "").casefold() or needle in (d["content"] or "").casefold()]
                total, dicts = len(found), found[(page - 1) * page_size: page * page_size]
            else:
                total = conn.execute(select(func.count()).select_from(GS).where(where)).scalar_one()
                dicts = [self._gem_dict(r) for r in conn.execute(
                    cols.limit(page_size).offset((page - 1) * page_size)).mappings()]
        df = pd.DataFrame(dicts, columns=["id"] + [k for k in self._GEM_COLS if k != "gem_id"])
        return df, int(total)

    def list_tags(self, name: str) -> list[str]:
        """Every tag used by the lattice's active gems, sorted (reads only the tags column)."""
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            rows = conn.execute(select(G.c.tags).where(G.c.lattice_id == lid, G.c.archived.is_(False))).scalars()
            return sorted({str(t) for tags in rows if isinstance(tags, list) for t in tags})

    def gem_texts(self, name: str, ids: Sequence[str] | None = None) -> pd.DataFrame:
        """id, title, content, tags, source for ``ids`` in that order (default: active gems, seq order)."""
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            q = select(G.c.gem_id, G.c.title, G.c.content, G.c.tags, G.c.source).where(G.c.lattice_id == lid)
            if ids is None:
                rows = conn.execute(q.where(G.c.archived.is_(False)).order_by(G.c.seq)).all()
            else:
                rows = []
                for chunk in _chunks(list(ids)):
                    rows += conn.execute(q.where(G.c.gem_id.in_(chunk))).all()
        df = pd.DataFrame(rows, columns=["id", "title", "content", "tags", "source"])
        if len(df):
            df["content"] = [self.cipher.decrypt(c) for c in df["content"]]
        if ids is not None:
            df = df.set_index("id").reindex(list(ids)).reset_index()
        return df

    def embeddings(self, name: str, ids: Sequence[str] | None = None) -> np.ndarray:
        """(N, dim) float32 embeddings of ``ids`` in that order (default: active gems, seq order)."""
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            q = select(G.c.gem_id, G.c.embedding).where(G.c.lattice_id == row["id"])
            if ids is None:
                pairs = conn.execute(q.where(G.c.archived.is_(False)).order_by(G.c.seq)).all()
                blobs = [b for _, b in pairs]
            else:
                found: dict[str, bytes] = {}
                for chunk in _chunks(list(ids)):
                    found.update(dict(conn.execute(q.where(G.c.gem_id.in_(chunk))).all()))
                missing = [g for g in ids if g not in found]
                if missing:
                    raise NotFoundError(f"no gem {missing[0]!r} in lattice {name!r}")
                blobs = [found[g] for g in ids]
        if not blobs:
            return np.zeros((0, row["dim"]), dtype=np.float32)
        return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), row["dim"]).astype(np.float32)

    # ------------------------------------------------------ import/export
    def import_path(self, name: str, path: str | Path, actor: Actor, *, split_headings: bool = False,
                    skip_bad: bool = False, edges: str | Path | None = None, embedder: str = DEFAULT_EMBEDDER,
                    params: LatticeParams | dict | None = None,
                    progress: Callable[[int, int], None] | None = None) -> ImportReport:
        """Import gems from a JSONL/CSV file or a folder of Markdown/text files into lattice ``name``.

        Creates the lattice (with ``embedder``, ``params``) if it does not exist. All or
        nothing unless ``skip_bad``: any bad row fails with ImportFailed naming file, line and
        field, and nothing is written. Entanglements come from ``edges`` or, if present, the
        side file ``<stem>.entanglements.csv``. ``progress(done, total)`` follows the embedding.
        """
        require(actor, Permission.EDIT, "import gems")
        records, issues = gio.parse_path(path, split_headings=split_headings)
        p = Path(path)
        edge_file = Path(edges) if edges else (gio.edges_path_for(p) if p.is_file() else None)
        edge_recs: list[gio.EdgeRecord] = []
        if edge_file is not None and (edges or edge_file.exists()):
            edge_recs, edge_issues = gio.parse_edges(edge_file)
            issues += edge_issues
        existing: set[str] = set()
        lattice_exists = self.exists(name)
        if lattice_exists:
            info = self.info(name)
            emb = self._embedder_for(info)
            with self._read() as conn:
                existing = self._existing_ids(conn, self._lattice_row(conn, name)["id"], [r.id for r in records if r.id])
                known = {e.source for e in edge_recs} | {e.target for e in edge_recs}
                known_existing = self._existing_ids(conn, self._lattice_row(conn, name)["id"], sorted(known))
        else:
            emb = get_embedder(embedder)
            known_existing = set()
        good = []
        for r in records:
            if r.id in existing:
                issues.append(ImportIssue(r.file, r.line, "id", f"gem id {r.id!r} already exists in lattice {name!r}"))
            else:
                good.append(r)
        new_ids = {r.id for r in good if r.id}
        good_edges = []
        for e in edge_recs:
            bad = next((f for f, g in (("source", e.source), ("target", e.target))
                        if g not in new_ids and g not in known_existing), None)
            if bad:
                issues.append(ImportIssue(e.file, e.line, bad, f"unknown gem id {getattr(e, bad)!r}"))
            else:
                good_edges.append(e)
        if issues and not skip_bad:
            raise ImportFailed(sorted(issues, key=lambda i: (i.file, i.line)))
        if not good:
            raise LatticeError(f"{path}: no gems to import" + (f" ({len(issues)} bad rows skipped)" if issues else ""))
        # Embed before taking the write lock: a slow embedder must not block other writers.
        vectors = embed_in_batches(emb, [r.content for r in good], progress=progress)
        create = None if lattice_exists else self._lattice_values(params, embedder, "manual")
        with self._write(name, actor, Permission.EDIT, "import gems", create=create) as tx:
            ids = self._insert_gems(tx, name, actor, good, vectors, "import", good_edges)
            version = tx.version
        self._analyze_after_bulk(len(ids))
        return ImportReport(name, str(path), len(ids), ids, len(good_edges), issues, version)

    def export(self, name: str, out: str | Path, *, include_archived: bool = False) -> dict[str, Any]:
        """Write the lattice's gems to ``out`` (.jsonl or .csv) and its entanglements to
        ``<stem>.entanglements.csv``: everything needed to re-import the same lattice."""
        self._catch_up(name)
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            q = select(G.c.gem_id.label("id"), G.c.title, G.c.content, G.c.tags, G.c.source,
                       *[S.c[s] for s in STATE]).select_from(GS).where(G.c.lattice_id == lid).order_by(G.c.seq)
            if not include_archived:
                q = q.where(G.c.archived.is_(False))
            rows = [dict(r) for r in conn.execute(q).mappings()]
        for r in rows:
            r["content"] = self.cipher.decrypt(r["content"])
        keep = {r["id"] for r in rows}
        edges = [(a, b, w) for a, b, w in self.entanglements(name).itertuples(index=False) if a in keep and b in keep]
        n = gio.write_gems(out, rows)
        edge_path = gio.edges_path_for(out)
        if edges:
            gio.write_edges(edge_path, edges)
        elif edge_path.exists():
            edge_path.unlink()  # a stale side file would re-import old edges
        return {"lattice": name, "path": str(out), "gems": n, "entanglements": len(edges),
                "entanglements_path": str(edge_path) if edges else None}

    # ---------------------------------------------------- transaction log
    def transactions(self, name: str, *, since_id: int | None = None, kinds: Sequence[str] | None = None,
                     limit: int | None = None) -> pd.DataFrame:
        """The lattice's log, oldest first: id, kind, gem_ids, before, after, actor, lattice_t,
        lattice_version, wall_time."""
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            q = select(T.c.id, T.c.kind, T.c.gem_ids, T.c.before, T.c.after, T.c.actor, T.c.lattice_t,
                       T.c.lattice_version, T.c.wall_time).where(T.c.lattice_id == lid)
            if since_id is not None:
                q = q.where(T.c.id > since_id)
            if kinds:
                q = q.where(T.c.kind.in_(list(kinds)))
            if limit:
                q = q.order_by(T.c.id.desc()).limit(limit)
                rows = conn.execute(q).all()[::-1]
            else:
                rows = conn.execute(q.order_by(T.c.id)).all()
        rows = [(*r[:3], txlog.unpack(r[3]), txlog.unpack(r[4]), *r[5:]) for r in rows]
        return pd.DataFrame(rows, columns=["id", "kind", "gem_ids", "before", "after", "actor", "lattice_t",
                                           "lattice_version", "wall_time"])

    # ------------------------------------------------- backup and restore
    def backup(self, name: str, out: str | Path, actor: Actor) -> dict[str, Any]:
        """Write a consistent snapshot of lattice ``name`` (admin). ``out``: a file or a folder."""
        self._require_admin(actor, "back up a lattice", "lattice.backup", name)
        with self._read() as conn:  # one read transaction: a consistent snapshot
            row = self._lattice_row(conn, name)
            gems = conn.execute(select(*_GEM_COLUMNS.values()).select_from(GS).where(G.c.lattice_id == row["id"])
                                .order_by(G.c.seq)).mappings().all()
            ga, gb = G.alias("ga"), G.alias("gb")
            edges = conn.execute(select(ga.c.gem_id, gb.c.gem_id, E.c.weight)
                                 .join(ga, ga.c.pk == E.c.gem_a).join(gb, gb.c.pk == E.c.gem_b)
                                 .where(E.c.lattice_id == row["id"]).order_by(ga.c.seq, gb.c.seq)).all()
            last_tx = conn.execute(select(func.max(T.c.id)).where(T.c.lattice_id == row["id"])).scalar() or 0
        lattice = {k: row[k] for k in ("name", "params", "embedder", "dim", "time_unit", "clock", "t",
                                       "wall_anchor", "version")}
        lattice.update(last_tx_id=int(last_tx), schema_revision=db.head_revision())
        gem_dicts = [{"id": g["gem_id"], "seq": g["seq"], "title": g["title"], "content": g["content"],
                      "tags": g["tags"], "source": g["source"], **{s: g[s] for s in STATE},
                      "last_observed": g["last_observed"], "archived": bool(g["archived"]), "version": g["version"],
                      "state_version": g["state_version"], "created_at": str(g["created_at"]),
                      "updated_at": str(g["updated_at"])} for g in gems]
        emb = (np.frombuffer(b"".join(g["embedding"] for g in gems), dtype="<f4").reshape(len(gems), row["dim"])
               if gems else np.zeros((0, row["dim"]), dtype=np.float32))
        path, digest = snap.write_snapshot(out, lattice, gem_dicts, emb,
                                           [{"source": a, "target": b, "weight": w} for a, b, w in edges],
                                           _now().isoformat())
        self._record_snapshot(name, "backup", path, digest, lattice, len(gems), actor)
        return {"lattice": name, "path": str(path), "sha256": digest, "gems": len(gems), "t": row["t"],
                "version": row["version"], "last_tx_id": int(last_tx)}

    def backup_database(self, out: str | Path, actor: Actor) -> dict[str, Any]:
        """Copy the whole SQLite database while it is in use (admin): every lattice, the
        log, runs, reflections, audit. ``out``: a file or a folder. On PostgreSQL use
        ``pg_dump`` (README, "Backup and restore"); this raises a LatticeError saying so."""
        self._require_admin(actor, "back up the database", "db.backup")
        if self.engine.dialect.name != "sqlite" or not self.engine.url.database:
            raise LatticeError("a whole-database backup here is for SQLite files; for PostgreSQL use pg_dump, e.g. "
                               "`pg_dump -Fc -d lattice -f lattice.dump` (see README, Backup and restore)")
        path, size, digest = snap.sqlite_online_copy(self.engine.url.database, out, _now().strftime("%Y%m%d-%H%M%S"))
        lattices = [i.name for i in self.list_lattices()]
        with self._tx() as conn:
            self._audit(conn, actor, "db.backup", str(path), {"bytes": size, "sha256": digest, "lattices": lattices})
        return {"path": str(path), "bytes": size, "sha256": digest, "lattices": lattices,
                "schema_revision": db.head_revision()}

    def _record_snapshot(self, name: str, action: str, path: Path | str, digest: str, lattice: dict, n: int,
                         actor: Actor) -> None:
        with self._tx() as conn:
            conn.execute(insert(SnapshotRow.__table__).values(
                lattice_name=name, action=action, path=str(path), sha256=digest, lattice_t=lattice["t"],
                lattice_version=lattice["version"], last_tx_id=lattice.get("last_tx_id", 0), gems=n,
                actor=actor.name, created_at=_now()))
            if action == "backup":  # a restore is audited inside its own transaction
                self._audit(conn, actor, "lattice.backup", name, {"path": str(path), "sha256": digest, "gems": n})

    def snapshots(self) -> pd.DataFrame:
        with self._read() as conn:
            rows = conn.execute(select(SnapshotRow.__table__).order_by(SnapshotRow.id)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows])

    @staticmethod
    def verify_snapshot(path: str | Path) -> tuple[snap.Snapshot, Lattice]:
        """The checks :meth:`restore` runs before writing, without writing: the snapshot's
        contents and the lattice it holds, or SnapshotError (for a preview and confirm step)."""
        return Store._validated_snapshot(path)

    @staticmethod
    def _validated_snapshot(path: str | Path) -> tuple[snap.Snapshot, Lattice]:
        """Read, verify and validate a snapshot completely (before anything is written)."""
        s = snap.read_snapshot(path)
        try:
            LatticeParams.from_dict(s.lattice["params"])
            for k, g in enumerate(s.gems):
                gio.record_or_error({f: g.get(f) for f in gio.FIELDS})
            seqs = [int(g["seq"]) for g in s.gems]
            if len(set(seqs)) != len(seqs) or len({g["id"] for g in s.gems}) != len(s.gems):
                raise LatticeError("duplicate gem ids or positions")
            ids = {g["id"] for g in s.gems}
            for e in s.edges:
                if e["source"] not in ids or e["target"] not in ids or not 0 < float(e["weight"]) <= 1:
                    raise LatticeError(f"invalid entanglement {e}")
            rs = Store._replay_state(s)
            return s, rs.lattice()
        except (KeyError, TypeError, ValueError, LatticeError) as exc:
            raise snap.SnapshotError(f"{path}: snapshot content is invalid ({exc}); nothing was restored") from None

    @staticmethod
    def _replay_state(s: snap.Snapshot) -> txlog.ReplayState:
        rs = txlog.ReplayState(LatticeParams.from_dict(s.lattice["params"]), float(s.lattice["t"]))
        for g in s.gems:
            rs.seq[g["id"]] = int(g["seq"])
            rs.state[g["id"]] = [float(g[k]) for k in STATE]
            rs.active[g["id"]] = not g["archived"]
        for e in s.edges:
            rs.edges[tuple(sorted((e["source"], e["target"])))] = float(e["weight"])
        return rs

    def restore(self, path: str | Path, actor: Actor, name: str | None = None) -> dict[str, Any]:
        """Replace lattice ``name`` (default: the snapshot's) with a snapshot, atomically (admin).

        The snapshot is verified (manifest checksums, content) before anything is written;
        the lattice keeps its log (a ``restore`` entry is appended) and its version keeps rising.
        """
        self._require_admin(actor, "restore a snapshot", "lattice.restore", name or str(path))
        s, _ = self._validated_snapshot(path)
        # Content as this database stores it: decrypt what the snapshot holds (plain text or
        # a token under any configured key; an undecryptable one fails here, before any write)
        # and encrypt under the newest key if encryption is on.
        try:
            contents = [self.cipher.encrypt(self.cipher.decrypt(g["content"])) for g in s.gems]
        except EncryptionError as exc:
            raise snap.SnapshotError(f"{path}: {exc}; nothing was restored") from None
        name = name or s.lattice["name"]
        lat = s.lattice
        emb = get_embedder(lat["embedder"]) if lat["embedder"] else None
        if emb is not None and emb.dim != lat["dim"]:
            raise snap.SnapshotError(f"{path}: snapshot embedder {lat['embedder']!r} has dimension {emb.dim}, "
                                     f"the snapshot {lat['dim']}")
        create = {k: lat[k] for k in ("params", "embedder", "dim", "time_unit", "clock", "t", "wall_anchor")}
        with self._write(name, actor, Permission.ADMIN, "restore a snapshot", create=create) as tx:
            tx.conn.execute(delete(G).where(G.c.lattice_id == tx.lid))  # edges cascade
            tx.conn.execute(update(L).where(L.c.id == tx.lid).values(**create))
            n, now = len(s.gems), _now()
            gems = {"lattice_id": [tx.lid] * n, **{k: [g[k] for g in s.gems] for k in ("title", "tags", "source")},
                    "gem_id": [g["id"] for g in s.gems], "seq": [int(g["seq"]) for g in s.gems], "content": contents,
                    "embedding": [_emb_bytes(v) for v in s.embeddings], "created_at": [now] * n,
                    "updated_at": [now] * n, "archived": [bool(g["archived"]) for g in s.gems],
                    "version": [int(g.get("version", 1)) for g in s.gems],
                    **{st: [float(g[st]) for g in s.gems] for st in STATE},
                    "last_observed": [g.get("last_observed") for g in s.gems],
                    "state_version": [int(g.get("state_version", 1)) for g in s.gems]}
            pks = self._insert_gem_rows(tx.conn, tx.lid, gems, "restore.batch")
            if s.edges:
                pk_of = dict(zip(gems["gem_id"], pks))
                tx.conn.execute(insert(E), [{"lattice_id": tx.lid, "gem_a": min(pk_of[e["source"]], pk_of[e["target"]]),
                                             "gem_b": max(pk_of[e["source"]], pk_of[e["target"]]),
                                             "weight": float(e["weight"])} for e in s.edges])
            txlog.append(tx.conn, tx.lid, name, "restore", actor, float(lat["t"]), tx.version, [],
                         after={"snapshot": str(path), "sha256": s.sha256, "snapshot_version": lat["version"]})
            self._audit(tx.conn, actor, "lattice.restore", name, {"path": str(path), "sha256": s.sha256,
                                                                   "gems": len(s.gems), "version": tx.version})
            version = tx.version
        self._analyze_after_bulk(len(s.gems))
        self._record_snapshot(name, "restore", path, s.sha256, lat, len(s.gems), actor)
        return {"lattice": name, "path": str(path), "sha256": s.sha256, "gems": len(s.gems), "t": lat["t"],
                "version": version}

    def replay_to(self, name: str, snapshot: str | Path, t: float) -> Lattice:
        """Point-in-time recovery: the state of lattice ``name`` at lattice time ``t``.

        Starts from the (verified) snapshot and replays the log entries written after it
        whose lattice time is <= ``t``; an evolution that spans ``t`` is replayed up to its
        last step at or before ``t`` (a simulation with steps passed through those states;
        its clock then reads that step's time). Returns the Lattice (active gems, seq
        order, edges), equal to what :meth:`load` returned at that time. Writes nothing.
        """
        s, _ = self._validated_snapshot(snapshot)
        rs = self._replay_state(s)
        if t < rs.t:
            raise ValidationError("t", f"{t} is before the snapshot's lattice time {rs.t}; use an older snapshot")
        last = int(s.lattice["last_tx_id"])
        if last:
            with self._read() as conn:
                lid = self._lattice_row(conn, name)["id"]
                if conn.execute(select(T.c.id).where(T.c.id == last, T.c.lattice_id == lid)).first() is None:
                    raise snap.SnapshotError(
                        f"{snapshot}: its log position ({last}) is not in the log of lattice {name!r} here "
                        "(snapshot from another database, or the lattice was deleted and recreated)")
        log = self.transactions(name, since_id=last)
        for entry in log.itertuples(index=False):
            if entry.lattice_t > t:
                if entry.kind == "evolve" and float(entry.after["t0"]) < t:
                    rs.apply(entry.kind, [], None, entry.after, float(entry.lattice_t), until=t)
                break
            rs.apply(entry.kind, list(entry.gem_ids or []), entry.before, entry.after, float(entry.lattice_t))
        return rs.lattice()

    # ------------------------------------------------------- runs, reflections
    def save_run(self, name: str | None, run_name: str, params: LatticeParams | dict, metrics: dict[str, Any],
                 actor: Actor, trajectory: pd.DataFrame | None = None) -> int:
        """Save an experiment (numeric trajectory columns stored as float32, compressed); returns its id."""
        require(actor, Permission.EDIT, "save a run")
        p = params.to_dict() if isinstance(params, LatticeParams) else LatticeParams.from_dict(params).to_dict()
        blob = _encode_frame(trajectory) if trajectory is not None else None
        metrics = _plain_json(dict(metrics), "metrics")
        with self._tx() as conn:
            lid = self._lattice_row(conn, name)["id"] if name else None
            return conn.execute(insert(RunRow.__table__).values(
                lattice_id=lid, name=str(run_name), params=p, metrics=metrics, trajectory=blob,
                actor=actor.name, created_at=_now()).returning(RunRow.id)).scalar_one()

    def list_runs(self, name: str | None = None) -> pd.DataFrame:
        """id, name, lattice, params, metrics, actor, created_at of saved runs (newest first)."""
        R = RunRow.__table__
        with self._read() as conn:
            q = select(R.c.id, R.c.name, L.c.name.label("lattice"), R.c.params, R.c.metrics, R.c.actor,
                       R.c.created_at).outerjoin(L, L.c.id == R.c.lattice_id).order_by(R.c.id.desc())
            if name:
                q = q.where(L.c.name == name)
            rows = conn.execute(q).all()
        return pd.DataFrame(rows, columns=["id", "name", "lattice", "params", "metrics", "actor", "created_at"])

    def get_run(self, run_id: int) -> dict[str, Any]:
        R = RunRow.__table__
        with self._read() as conn:
            r = conn.execute(select(R, L.c.name.label("lattice")).outerjoin(L, L.c.id == R.c.lattice_id)
                             .where(R.c.id == int(run_id))).mappings().first()
        if r is None:
            raise NotFoundError(f"no run with id {run_id}")
        out = dict(r)
        out["trajectory"] = _decode_frame(r["trajectory"]) if r["trajectory"] else None
        return out

    def _insert_reflection(self, tx: _Tx, actor: Actor, query: str, answer: str = "",
                           provider_trace: Sequence[Any] = (), gems_used: Sequence[Any] = (),
                           latency_ms: float | None = None, tokens_in: int | None = None,
                           tokens_out: int | None = None) -> int:
        if not isinstance(query, str) or not isinstance(answer, str):
            raise ValidationError("query", "query and answer must be text")
        return tx.conn.execute(insert(ReflectionRow.__table__).values(
            lattice_id=tx.lid, query=query, answer=answer,
            provider_trace=_plain_json(list(provider_trace), "provider_trace"),
            gems_used=_plain_json(list(gems_used), "gems_used"),
            latency_ms=None if latency_ms is None else float(latency_ms),
            tokens_in=None if tokens_in is None else int(tokens_in),
            tokens_out=None if tokens_out is None else int(tokens_out),
            actor=actor.name, lattice_t=tx.t, created_at=_now()).returning(ReflectionRow.id)).scalar_one()

    def record_reflection(self, name: str, actor: Actor, query: str, answer: str = "", *,
                          provider_trace: Sequence[Any] = (), gems_used: Sequence[Any] = (),
                          latency_ms: float | None = None, tokens_in: int | None = None,
                          tokens_out: int | None = None) -> int:
        """Store a reflection (query, answer, provider trace, gems used with score terms...); returns its id."""
        require(actor, Permission.REFLECT, "record a reflection")
        # A record, not a state change: the lattice version (and so caches) stay as they are.
        with self._tx() as conn:
            tx = _Tx(conn, self._lattice_row(conn, name))
            return self._insert_reflection(tx, actor, query, answer, provider_trace, gems_used, latency_ms,
                                           tokens_in, tokens_out)

    def list_reflections(self, name: str, limit: int = 50) -> pd.DataFrame:
        Rf = ReflectionRow.__table__
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            rows = conn.execute(select(Rf).where(Rf.c.lattice_id == lid).order_by(Rf.c.id.desc())
                                .limit(limit)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows])

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
        conn.execute(insert(A).values(wall_time=_now(), actor=actor.name, role=actor.role.value, action=action,
                                      target=str(target)[:500], outcome=outcome,
                                      details=_plain_json(dict(details or {}), "details")))

    def audit(self, actor: Actor, action: str, target: str = "", details: dict[str, Any] | None = None,
              outcome: str = "ok") -> None:
        """Record an administrative action done outside the store (e.g. ``user.create``,
        ``user.role``, ``user.delete`` by core.auth.credentials). Admin only; never put secrets in ``details``."""
        self._require_admin(actor, "record an administrative action", action, target)
        if not isinstance(action, str) or not re.fullmatch(r"[a-z][a-z0-9_.-]{0,49}", action):
            raise ValidationError("action", f"{action!r}: use 1-50 lowercase letters, digits, . _ -")
        if outcome not in ("ok", "started", "denied", "failed"):
            raise ValidationError("outcome", f"{outcome!r}; allowed: ok, started, denied, failed")
        with self._tx() as conn:
            self._audit(conn, actor, action, target, details, outcome)

    def audit_log(self, *, limit: int | None = 100, action: str | None = None,
                  actor: str | None = None) -> pd.DataFrame:
        """The audit log, newest first: id, wall_time, actor, role, action, target, outcome, details."""
        with self._read() as conn:
            q = select(A).order_by(A.c.id.desc())
            if action:
                q = q.where(A.c.action == action)
            if actor:
                q = q.where(A.c.actor == actor)
            if limit:
                q = q.limit(int(limit))
            rows = conn.execute(q).mappings().all()
        return pd.DataFrame([dict(r) for r in rows],
                            columns=["id", "wall_time", "actor", "role", "action", "target", "outcome", "details"])

    # ------------------------------------------------------- encryption keys
    def encryption_status(self) -> dict[str, int]:
        """How gem content is stored: rows in plain text, under the newest key, under an older key."""
        out = {"gems": 0, "plaintext": 0, "current_key": 0, "older_key": 0}
        with self._read() as conn:
            for (content,) in conn.execute(select(G.c.content)):
                out["gems"] += 1
                if not self.cipher.is_encrypted(content):
                    out["plaintext"] += 1
                elif self.cipher.is_current(content):
                    out["current_key"] += 1
                else:
                    out["older_key"] += 1
        return out

    def _rotate_json(self, value: Any) -> tuple[Any, bool]:
        """A log payload with its ``content`` value(s) re-encrypted under the newest key."""
        if not isinstance(value, dict) or "content" not in value:
            return value, False
        c = value["content"]
        items = c if isinstance(c, list) else [c]
        if all(not isinstance(x, str) or self.cipher.is_current(x) for x in items):
            return value, False
        new = [self.cipher.rotate(x) if isinstance(x, str) else x for x in items]
        return {**value, "content": new if isinstance(c, list) else new[0]}, True

    def rotate_keys(self, actor: Actor, *, batch_size: int = 500,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Re-encrypt every gem's content (and the content kept by the log) under the newest key.

        Runs in committed batches (ordered by primary key), so an interrupted rotation loses
        nothing and a rerun finishes it: rows already under the newest key are skipped. Old
        keys must stay configured (second, third... in LATTICE_ENCRYPTION_KEYS) until it has
        completed. A row changed concurrently is skipped (its new value already uses the
        newest key). Plain-text rows are encrypted. Admin only; audited (never the keys).
        """
        self._require_admin(actor, "rotate the encryption keys", "keys.rotate")
        if not self.cipher.enabled:
            raise EncryptionError("no encryption keys configured; set LATTICE_ENCRYPTION_KEYS (newest first) first")
        if batch_size < 1:
            raise ValidationError("batch_size", f"must be >= 1, got {batch_size}")
        with self._read() as conn:
            total = conn.execute(select(func.count()).select_from(G)).scalar_one()
        with self._tx() as conn:
            self._audit(conn, actor, "keys.rotate", "", {"keys": len(self.cipher.keys), "gems": total},
                        outcome="started")
        counts = {"gems": total, "rotated": 0, "skipped": 0, "log_entries": 0, "batches": 0}
        last, done = 0, 0
        while True:
            with self._tx() as conn:
                rows = conn.execute(select(G.c.pk, G.c.content).where(G.c.pk > last).order_by(G.c.pk)
                                    .limit(batch_size)).all()
                if not rows:
                    break
                todo = [(pk, c) for pk, c in rows if not self.cipher.is_current(c)]
                if todo:
                    res = conn.execute(update(G).where(G.c.pk == bindparam("b_pk"), G.c.content == bindparam("b_old"))
                                       .values(content=bindparam("b_new")),
                                       [{"b_pk": pk, "b_old": c, "b_new": self.cipher.rotate(c)} for pk, c in todo])
                    counts["rotated"] += max(res.rowcount, 0)
                counts["skipped"] += len(rows) - len(todo)
                last = rows[-1][0]
            done += len(rows)
            counts["batches"] += 1
            if progress:
                progress(min(done, total), max(total, 1))
            faults.checkpoint("rotate.batch")
        last = 0
        while True:  # the content values kept by the log (edit/delete entries)
            with self._tx() as conn:
                rows = conn.execute(select(T.c.id, T.c.before, T.c.after).where(
                    T.c.id > last, T.c.kind.in_(["edit", "delete"])).order_by(T.c.id).limit(batch_size)).all()
                if not rows:
                    break
                for tid, before, after in rows:
                    nb, cb = self._rotate_json(before)
                    na, ca = self._rotate_json(after)
                    if cb or ca:
                        conn.execute(update(T).where(T.c.id == tid).values(before=nb, after=na))
                        counts["log_entries"] += 1
                last = rows[-1][0]
        with self._tx() as conn:
            self._audit(conn, actor, "keys.rotate", "", {"keys": len(self.cipher.keys), **counts})
        return counts

    # ------------------------------------------------------------- re-embed
    def reembed(self, name: str, embedder: str, actor: Actor, *,
                progress: Callable[[int, int], None] | None = None, batch_size: int = 256) -> LatticeInfo:
        """Re-embed every gem of lattice ``name`` (archived ones too) with ``embedder``.

        Embeds in batches (``progress(done, total)``) outside the write lock, then writes all
        embeddings, the lattice's embedder and dimension in one transaction (version bumped,
        a ``reembed`` log entry, an audit entry): all or nothing. If a gem's content changed
        meanwhile: ConflictError, nothing written; run it again.
        """
        require(actor, Permission.EDIT, "re-embed a lattice")
        emb = get_embedder(embedder)
        if batch_size < 1:
            raise ValidationError("batch_size", f"must be >= 1, got {batch_size}")
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            gems = conn.execute(select(G.c.pk, G.c.content).where(G.c.lattice_id == row["id"])
                                .order_by(G.c.pk)).all()
        texts = [self.cipher.decrypt(c) or "" for _, c in gems]
        vectors = np.zeros((len(texts), emb.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            vectors[start:start + batch_size] = emb.embed(texts[start:start + batch_size])
            if progress:
                progress(min(start + batch_size, len(texts)), len(texts))
            faults.checkpoint("reembed.batch")
        if progress and not texts:
            progress(0, 0)
        with self._write(name, actor, Permission.EDIT, "re-embed a lattice") as tx:
            now = dict(tx.conn.execute(select(G.c.pk, G.c.content).where(G.c.lattice_id == tx.lid)).all())
            if now != dict(gems):
                raise ConflictError(f"the gems of lattice {name!r} changed during the re-embedding; run it again "
                                    "- nothing was written")
            for chunk in _chunks(list(range(len(gems))), 1000):
                tx.conn.execute(update(G).where(G.c.pk == bindparam("b_pk")).values(embedding=bindparam("b_emb")),
                                [{"b_pk": gems[k][0], "b_emb": _emb_bytes(vectors[k])} for k in chunk])
            tx.conn.execute(update(L).where(L.c.id == tx.lid).values(embedder=emb.name, dim=emb.dim))
            before = {"embedder": tx.row["embedder"], "dim": tx.row["dim"]}
            after = {"embedder": emb.name, "dim": emb.dim, "gems": len(gems)}
            txlog.append(tx.conn, tx.lid, name, "reembed", actor, tx.t, tx.version, [], before=before, after=after)
            self._audit(tx.conn, actor, "lattice.reembed", name, {"before": before, "after": after})
        return self.info(name)
