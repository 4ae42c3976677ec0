"""Lattices as a whole: list, describe, create, delete, parameters and clock."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, func, select, update

from core.access import Actor, Permission
from core.errors import LatticeError, ValidationError
from core.engine.params import LatticeParams
from core.knowledge.registry import DEFAULT_EMBEDDER, get_embedder
from core.store import txlog
from core.store.errors import ConflictError
from core.store.kernel import StoreKernel, check_name
from core.store.records import LatticeInfo, lattice_info
from core.store.tables import GEMS, LATTICES


class LatticesMixin(StoreKernel):
    """The lattices table's side of the Store (uses ``_catch_up`` of :class:`StateMixin` and
    ``_audit``/``_require_admin`` of the kernel)."""

    def list_lattices(self) -> list[LatticeInfo]:
        with self._read() as conn:
            counts = {(lid, bool(arch)): n for lid, arch, n in conn.execute(
                select(GEMS.c.lattice_id, GEMS.c.archived, func.count()).group_by(GEMS.c.lattice_id, GEMS.c.archived))}
            return [lattice_info(r, counts.get((r.id, False), 0), counts.get((r.id, True), 0))
                    for r in conn.execute(select(LATTICES).order_by(LATTICES.c.name))]

    def lattice_names(self) -> list[str]:
        """The lattices' names, sorted (no gem counts: one cheap query, for every page run)."""
        with self._read() as conn:
            return list(conn.execute(select(LATTICES.c.name).order_by(LATTICES.c.name)).scalars())

    def exists(self, name: str) -> bool:
        if not isinstance(name, str) or "\x00" in name:
            return False  # never a lattice name (and PostgreSQL refuses NUL in a query)
        with self._read() as conn:
            return conn.execute(select(LATTICES.c.id).where(LATTICES.c.name == name)).first() is not None

    def info(self, name: str) -> LatticeInfo:
        self._catch_up(name)
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            counts = dict(conn.execute(select(GEMS.c.archived, func.count()).where(GEMS.c.lattice_id == row["id"])
                                       .group_by(GEMS.c.archived)).all())
            return lattice_info(row, counts.get(False, 0), counts.get(True, 0))

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
        check_name(name)
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
            tx.conn.execute(delete(LATTICES).where(LATTICES.c.id == tx.lid))
            self._audit(tx.conn, actor, "lattice.delete", name, {"version": tx.version - 1})

    def update_params(self, name: str, params: LatticeParams | dict, actor: Actor,
                      expected_version: int | None = None) -> LatticeInfo:
        """Replace the lattice's parameters (a dict may be partial: it updates the current ones)."""
        with self._write(name, actor, Permission.EDIT, "change lattice parameters", expected_version) as tx:
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
            tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid).values(
                clock=clock, wall_anchor=time.time() if clock == "wall" else None))
            txlog.append(tx.conn, tx.lid, name, "clock", actor, tx.t, tx.version,
                         before={"clock": tx.row["clock"]}, after={"clock": clock})
        return self.info(name)
