"""Lattices as a whole: list, describe, create, delete, parameters and clock."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, func, select, update

from core.access import Actor, Permission
from core.errors import LatticeError, ValidationError
from core.engine.params import PRESET_NAMES, LatticeParams, preset_params
from core.knowledge.hybrid import default_embedder
from core.knowledge.registry import get_embedder
from core.store import txlog
from core.store.errors import ConflictError
from core.store.kernel import StoreKernel, check_name
from core.store.records import LatticeInfo, LoadedLattice, epoch_seconds, lattice_info
from core.store.tables import GEMS, LATTICES


class LatticesMixin(StoreKernel):
    """The lattices table's side of the Store (uses ``_catch_up_tx`` of :class:`StateMixin` and
    ``_audit``/``_require_admin`` of the kernel)."""

    def list_lattices(self) -> list[LatticeInfo]:
        """Every lattice with its gem counts, as of now (a wall lattice's ``t`` as :meth:`info`
        computes it), read only."""
        now = time.time()
        with self._read() as conn:
            counts = {(lid, bool(arch)): n for lid, arch, n in conn.execute(
                select(GEMS.c.lattice_id, GEMS.c.archived, func.count()).group_by(GEMS.c.lattice_id, GEMS.c.archived))}
            rows = [dict(r) for r in conn.execute(select(LATTICES).order_by(LATTICES.c.name)).mappings()]
        return [lattice_info(self._row_at(r, now), counts.get((r["id"], False), 0), counts.get((r["id"], True), 0))
                for r in rows]

    def lattice_names(self) -> list[str]:
        """The lattices' names, sorted (no gem counts: one cheap query, for every page run)."""
        with self._read() as conn:
            return list(conn.execute(select(LATTICES.c.name).order_by(LATTICES.c.name)).scalars())

    def exists(self, name: str) -> bool:
        if not isinstance(name, str) or "\x00" in name:
            return False  # never a lattice name (and PostgreSQL refuses NUL in a query)
        with self._read() as conn:
            return conn.execute(select(LATTICES.c.id).where(LATTICES.c.name == name)).first() is not None

    def info(self, name: str, now: float | None = None) -> LatticeInfo:
        """The lattice as of ``now`` (UTC epoch seconds, default the current time), read only.

        A wall-clock lattice's ``t`` is computed to now (the wall time since its anchor, in
        its time unit) and its derived epoch is unchanged; nothing is written, so the
        ``version`` is the stored one and an ``expected_version`` taken from it matches at
        the next write (which catches up inside its own transaction)."""
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            counts = dict(conn.execute(select(GEMS.c.archived, func.count()).where(GEMS.c.lattice_id == row["id"])
                                       .group_by(GEMS.c.archived)).all())
        return lattice_info(self._row_at(row, time.time() if now is None else float(now)),
                            counts.get(False, 0), counts.get(True, 0))

    @staticmethod
    def _row_at(row: dict[str, Any], now: float) -> dict[str, Any]:
        """A ``lattices`` row as of ``now``: a wall lattice behind ``now`` gets ``t`` advanced by
        the elapsed wall time and ``wall_anchor = now`` (so ``wall_anchor - t * unit``, the
        epoch, stays); any other row is returned as it is."""
        if row["clock"] != "wall" or row["wall_anchor"] is None:
            return row
        elapsed = (now - float(row["wall_anchor"])) / LatticeParams.from_dict(row["params"]).time_unit_seconds
        if not elapsed > 0:
            return row
        return {**row, "t": float(row["t"]) + elapsed, "wall_anchor": now}

    def load_stored(self, name: str) -> LoadedLattice:
        """The lattice's active gems as stored, read only: no wall-clock catch-up is written
        (evolve the returned, independent copy to rank it at another time), nothing changes.
        ``info`` carries the gem count and the epoch."""
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            lat, pks = self._load_state(conn, row)  # type: ignore[attr-defined]  (StateMixin)
        return LoadedLattice(name, lat, int(row["version"]), lattice_info(row, len(lat)), self, lat.copy(), pks)

    def version(self, name: str) -> int:
        """The lattice's stored version, read only: a cheap cache key, and what ``expected_version``
        of the next write compares with. A wall-clock lattice's clock moves without changing it
        (its time is computed at each read: ``info``, or ``load_stored`` evolved in memory)."""
        with self._read() as conn:
            return int(self._lattice_row(conn, name)["version"])

    @staticmethod
    def _lattice_values(params: LatticeParams | dict | None, embedder: str | None, clock: str) -> dict[str, Any]:
        """The ``lattices`` row of a new lattice (clock at t = 0, epoch = now: its creation instant).
        ``embedder`` None: the preset's (:meth:`_new_embedder`)."""
        p = params if isinstance(params, LatticeParams) else LatticeParams.from_dict(params or {})
        if clock not in ("manual", "wall"):
            raise ValidationError("clock", f"got {clock!r}; allowed: manual, wall")
        emb = get_embedder(LatticesMixin._new_embedder(embedder, p))
        now = time.time()
        return {"params": p.to_dict(), "embedder": emb.name, "dim": emb.dim, "time_unit": p.time_unit,
                "clock": clock, "t": 0.0, "wall_anchor": now if clock == "wall" else None, "epoch": now}

    @staticmethod
    def _new_params(params: LatticeParams | dict | None, clock: str, preset: str | None) -> LatticeParams:
        """The parameters of a new lattice.

        ``preset`` given: that preset's parameters over ``params`` (``core.engine.preset_params``).
        Not given: a complete :class:`LatticeParams` is kept as it is; a dict (partial) or None
        starts from the default preset of the clock (``memory`` for a wall lattice, live memory;
        ``seed`` for a manual one, the simulation default), the dict's values over it.
        """
        if preset is not None and (not isinstance(preset, str) or preset not in PRESET_NAMES):
            raise ValidationError("preset", f"got {preset!r}; allowed: {', '.join(PRESET_NAMES)}")
        if preset is not None:
            base = params if isinstance(params, LatticeParams) else LatticeParams.from_dict(params or {})
            return preset_params(preset, base)
        if isinstance(params, LatticeParams):
            return params
        given = dict(params or {})
        base = LatticeParams.from_dict({"time_unit": given["time_unit"]} if "time_unit" in given else {})
        started = preset_params(str(given.get("preset", "memory" if clock == "wall" else "seed")), base)
        return started.replace(**given)

    @staticmethod
    def _new_embedder(embedder: str | None, params: LatticeParams) -> str:
        """The embedder of a new lattice: the one given, else its preset's: ``hashing-v2`` for a
        ``memory`` lattice (the embedder its hybrid retriever was tuned with), ``hashing-v1``
        otherwise (``core.knowledge.hybrid.default_embedder``)."""
        return default_embedder(params.preset) if embedder is None else embedder

    def create_lattice(self, name: str, actor: Actor, params: LatticeParams | dict | None = None,
                       embedder: str | None = None, clock: str = "manual",
                       preset: str | None = None) -> LatticeInfo:
        """Create an empty lattice; LatticeError if the name is taken or invalid.

        ``preset`` (seed, memory, archive): its parameters over ``params``; default ``memory``
        for a wall-clock lattice and ``seed`` for a manual one (see :meth:`_new_params`).
        ValidationError listing the names for an unknown preset. ``embedder`` (default: the
        preset's, :meth:`_new_embedder`: hashing-v2 for memory, hashing-v1 otherwise).
        """
        check_name(name)
        p = self._new_params(params, clock, preset)
        if self.exists(name):
            raise LatticeError(f"lattice {name!r} already exists; pick another name")
        with self._write(name, actor, Permission.EDIT, "create a lattice",
                         create=self._lattice_values(p, embedder, clock)) as tx:
            if tx.version != 1:
                raise ConflictError(f"lattice {name!r} was created concurrently; pick another name")
        return self.info(name)

    def delete_lattice(self, name: str, actor: Actor) -> None:
        """Delete a lattice with its gems, log, reflections (admin)."""
        self._require_admin(actor, "delete a lattice", "lattice.delete", name)
        with self._write(name, actor, Permission.ADMIN, "delete a lattice") as tx:
            tx.conn.execute(delete(LATTICES).where(LATTICES.c.id == tx.lid))
            self._audit(tx.conn, actor, "lattice.delete", name, {"version": tx.version - 1})

    def update_params(self, name: str, params: LatticeParams | dict, actor: Actor,
                      expected_version: int | None = None) -> LatticeInfo:
        """Replace the lattice's parameters (a dict may be partial: it updates the current ones)."""
        with self._write(name, actor, Permission.EDIT, "change lattice parameters", expected_version) as tx:
            self._catch_up_tx(tx, name)  # type: ignore[attr-defined]  (StateMixin) the time so far ran under the old ones
            old = LatticeParams.from_dict(tx.row["params"])
            new = params if isinstance(params, LatticeParams) else old.replace(**params)
            tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid)
                            .values(params=new.to_dict(), time_unit=new.time_unit))
            txlog.append(tx.conn, tx.lid, name, "params", actor, tx.t, tx.version,
                         before={"params": old.to_dict()}, after={"params": new.to_dict()})
        return self.info(name)

    def set_clock(self, name: str, clock: str, actor: Actor) -> LatticeInfo:
        """``manual`` (advanced only by simulate/advance) or ``wall`` (follows real time)."""
        if clock not in ("manual", "wall"):
            raise ValidationError("clock", f"got {clock!r}; allowed: manual, wall")
        with self._write(name, actor, Permission.EDIT, "change the lattice clock") as tx:
            self._catch_up_tx(tx, name)  # type: ignore[attr-defined]  (StateMixin) a wall lattice stops at now
            now = time.time()
            # the epoch as it is now (derived for a wall lattice), then the new clock's invariant:
            # a wall lattice's lattice time t is wall time now (epoch = now - t * unit)
            epoch = epoch_seconds(tx.row)
            if clock == "wall":
                epoch = now - float(tx.row["t"]) * LatticeParams.from_dict(tx.row["params"]).time_unit_seconds
            tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid).values(
                clock=clock, wall_anchor=now if clock == "wall" else None, epoch=epoch))
            txlog.append(tx.conn, tx.lid, name, "clock", actor, tx.t, tx.version,
                         before={"clock": tx.row["clock"]}, after={"clock": clock})
        return self.info(name)
