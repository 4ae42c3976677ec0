"""A lattice's state as arrays: load and save, the clock (advance, simulate, wall-clock
catch-up), observations and reflection updates, entanglements.

The state of every active gem is read in bulk into a :class:`core.engine.lattice.Lattice`
and written back in bulk; each change is one transaction and one log entry (or two).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from core.access import Actor, Permission, Role
from core.errors import ValidationError
from core.engine.lattice import Lattice
from core.engine.params import STATE_SPECS, LatticeParams
from core.engine.trajectory import Trajectory, simulate
from core.store import bulk, txlog
from core.store.errors import ConflictError, NotFoundError
from core.store.kernel import StoreKernel, Tx, chunks
from core.store.models import utcnow
from core.store.records import LatticeInfo, LoadedLattice, lattice_info
from core.store.repair import check_loadable
from core.store.tables import ENTANGLEMENTS, GEM_STATES, GEMS, LATTICES, STATE

CLOCK_ACTOR = Actor("clock", Role.ADMIN)  # wall-clock catch-up (time passing is not a user action)


class StateMixin(StoreKernel):
    """Load/save, dynamics and edges (uses ``_insert_reflection`` of :class:`RunsMixin`)."""

    # ------------------------------------------------------- state arrays
    @staticmethod
    def _load_state(conn: Connection, row: dict[str, Any]) -> tuple[Lattice, np.ndarray]:
        """Bulk SELECT of the active gems' state into arrays (seq order) and their edges."""
        # keys, state and ids in one statement in the caller's transaction (a snapshot when
        # reading; the lattice row is locked when writing): a second scan and sort of the
        # gems for their ids cost a quarter of a 1e6-gem load
        state_cols = ", ".join(f"s.{c}" for c in STATE)
        pks, *state, gem_ids = bulk.select_columns(
            conn, f"SELECT CAST(g.pk AS BIGINT), {state_cols}, g.gem_id FROM {GEMS.name} g "
                  f"JOIN {GEM_STATES.name} s ON s.gem_pk = g.pk "
                  f"WHERE g.lattice_id = {int(row['id'])} AND NOT g.archived ORDER BY g.seq",
            ["i8"] + ["f8"] * len(STATE) + [object])
        ids = gem_ids.tolist()
        check_loadable(row["name"], ids, state, row["t"])  # damaged state: say which gems and how to repair
        lat = Lattice(*state, params=LatticeParams.from_dict(row["params"]), ids=ids, t=float(row["t"]))
        edges = conn.execute(select(ENTANGLEMENTS.c.gem_a, ENTANGLEMENTS.c.gem_b, ENTANGLEMENTS.c.weight)
                             .where(ENTANGLEMENTS.c.lattice_id == row["id"])).all()
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
        """Bulk UPDATE of the state rows of the gems at positions ``idx`` (all if None).

        The last line of defence: values that are not finite or out of range are refused
        (ValidationError naming the gems; the caller's transaction writes nothing).
        """
        idx = np.arange(len(pks)) if idx is None else np.asarray(idx, dtype=np.int64)
        if idx.size:
            for s in STATE:
                values = getattr(lat, s)[idx]
                if STATE_SPECS[s].invalid(values).any():
                    STATE_SPECS[s].check(values, [lat.ids[i] for i in idx])
            bulk.update_by_key(conn, GEM_STATES, "gem_pk", pks[idx], {s: getattr(lat, s)[idx] for s in STATE},
                               bump="version")

    @staticmethod
    def _load_around(conn: Connection, row: dict[str, Any], gem_ids: Sequence[str]) -> tuple[Lattice, np.ndarray]:
        """The state of the active gems ``gem_ids``, their active entangled partners and the
        edges that touch ``gem_ids``, as a small Lattice in seq order with the gems' pks.

        All that observing and strengthening ``gem_ids`` reads (observe lifts partners by
        the edges of observed gems; strengthen changes pairs among them), so a reflection's
        write costs O(k + their degree) rows instead of loading every gem's state. Gem ids
        that are not active are left out (the caller's ``_positions`` names them).
        """
        lid = int(row["id"])
        used: dict[int, str] = {}
        for part in chunks(list(dict.fromkeys(gem_ids))):
            used.update((int(pk), gid) for gid, pk in conn.execute(
                select(GEMS.c.gem_id, GEMS.c.pk).where(GEMS.c.lattice_id == lid, GEMS.c.gem_id.in_(part),
                                                       GEMS.c.archived.is_(False))))
        keys = list(used)
        edges: dict[tuple[int, int], float] = {}
        for part in chunks(keys):  # by gem_a (primary key) and by gem_b (its own index)
            for col in (ENTANGLEMENTS.c.gem_a, ENTANGLEMENTS.c.gem_b):
                edges.update(((int(a), int(b)), float(w)) for a, b, w in conn.execute(
                    select(ENTANGLEMENTS.c.gem_a, ENTANGLEMENTS.c.gem_b, ENTANGLEMENTS.c.weight)
                    .where(col.in_(part))))
        wanted = sorted(set(keys) | {pk for pair in edges for pk in pair})
        cols = [GEMS.c.seq, GEMS.c.pk, GEMS.c.gem_id] + [GEM_STATES.c[c] for c in STATE]
        rows = []
        for part in chunks(wanted):
            rows += conn.execute(select(*cols).select_from(GEMS.join(GEM_STATES, GEM_STATES.c.gem_pk == GEMS.c.pk))
                                 .where(GEMS.c.pk.in_(part), GEMS.c.archived.is_(False))).all()
        rows.sort()  # seq order, as a full load (so the log lists gems in the same order)
        pks = np.array([r[1] for r in rows], dtype=np.int64)
        state = [np.array([r[3 + k] for r in rows], dtype=np.float64) for k in range(len(STATE))]
        lat = Lattice(*state, params=LatticeParams.from_dict(row["params"]), ids=[r[2] for r in rows],
                      t=float(row["t"]))
        pos = {int(pk): i for i, pk in enumerate(pks.tolist())}
        kept = [(pos[a], pos[b], w) for (a, b), w in edges.items() if a in pos and b in pos]
        if kept:
            i, j, w = zip(*kept)
            lat.set_edges(i, j, w)
        return lat, pks

    def _positions(self, lat: Lattice, gem_ids: Sequence[str], name: str) -> np.ndarray:
        pos = {g: i for i, g in enumerate(lat.ids)}
        missing = [g for g in gem_ids if g not in pos]
        if missing:
            raise NotFoundError(f"gem {missing[0]!r} is not an active gem of lattice {name!r} "
                                "(unknown, deleted or archived)")
        return np.array([pos[g] for g in gem_ids], dtype=np.int64)

    def load(self, name: str) -> LoadedLattice:
        """The lattice's active gems as a Lattice, for an editor that saves it back (``save``,
        optimistic on the version): a wall-clock lattice is first caught up to now in a write
        of its own, so the loaded state, ``t`` and version are the stored ones. A reader uses
        ``load_stored`` (writes nothing) and evolves its copy to the time it wants."""
        self._catch_up(name)
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            lat, pks = self._load_state(conn, row)
        return LoadedLattice(name, lat, int(row["version"]), lattice_info(row, len(lat)), self, lat.copy(), pks)

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
                tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid)
                                .values(params=new.params.to_dict(), time_unit=new.params.time_unit))
                txlog.append(tx.conn, tx.lid, loaded.name, "params", actor, tx.t, tx.version,
                             before={"params": cur.params.to_dict()}, after={"params": new.params.to_dict()})
            if changed.size or new.t != cur.t:
                self._save_state(tx.conn, pks, new, changed)
                tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid).values(t=float(new.t)))
                ids = [new.ids[i] for i in changed]
                txlog.append(tx.conn, tx.lid, loaded.name, "edit", actor, new.t, tx.version, ids,
                             before={s: getattr(cur, s)[changed] for s in STATE},
                             after={s: getattr(new, s)[changed] for s in STATE})
            self._save_edge_diff(tx, loaded.name, actor, cur, new, pks)
            version = tx.version
        return LoadedLattice(loaded.name, new, version, loaded.info, self, new.copy(), pks)

    # ---------------------------------------------------------- dynamics
    def _catch_up(self, name: str) -> None:
        """Evolve a wall-clock lattice to now in a transaction of its own (no-op for manual
        lattices). Only for callers that must see the caught-up rows; reads (``info``,
        ``version``, ``load``) compute now in memory instead, and writes catch up inside their
        own transaction (:meth:`_catch_up_tx`), after their ``expected_version`` check."""
        with self._read() as conn:
            row = conn.execute(select(LATTICES.c.clock).where(LATTICES.c.name == name)).first()
        if row is None or row.clock != "wall":
            return
        with self._write(name, CLOCK_ACTOR, Permission.EDIT, "advance the lattice clock") as tx:
            self._catch_up_tx(tx, name)

    def _catch_up_tx(self, tx: Tx, name: str) -> tuple[Lattice, np.ndarray] | None:
        """Inside write ``tx`` (lattice row locked, version already checked and bumped): evolve
        a wall-clock lattice by the wall time since its anchor (time units of its parameters,
        one step), save every gem's state, move ``t`` and ``wall_anchor`` (in ``tx.row`` too)
        and log an ``evolve`` entry by the clock, so replay reproduces it. Returns the caught-up
        state and gem pks, or None (a manual lattice, or no time has passed): nothing written."""
        if tx.row["clock"] != "wall":
            return None
        now = time.time()  # measured under the lock: concurrent writers catch up once
        unit = LatticeParams.from_dict(tx.row["params"]).time_unit_seconds
        horizon = (now - (tx.row["wall_anchor"] or now)) / unit
        if not horizon > 0:
            return None
        lat, pks = self._load_state(tx.conn, tx.row)
        t0, c0 = lat.t, lat.coherence.copy()
        simulate(lat, horizon, dt=horizon, inplace=True)
        self._save_state(tx.conn, pks, lat)
        tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid).values(t=float(lat.t), wall_anchor=now))
        txlog.append(tx.conn, tx.lid, name, "evolve", CLOCK_ACTOR, lat.t, tx.version, [], after={
            "t0": t0, "horizon": horizon, "step": horizon, "params": lat.params.to_dict(), "gems": len(lat),
            "mean_coherence_delta": float((lat.coherence - c0).mean()) if len(lat) else 0.0})
        tx.row.update(t=float(lat.t), wall_anchor=now)
        return lat, pks

    def _evolve(self, name: str, actor: Actor, horizon: float, step: float | None = None,
                params: LatticeParams | None = None, progress: Callable[[float], None] | None = None,
                expected_version: int | None = None,
                should_stop: Callable[[], bool] | None = None) -> tuple[Trajectory | None, LatticeInfo]:
        with self._write(name, actor, Permission.EDIT, "advance the lattice clock", expected_version) as tx:
            # a wall lattice first catches up to now (its own log entry, wall_anchor = now), so the
            # span runs from now: its lattice time then leads wall time by the span (the epoch moves)
            caught = self._catch_up_tx(tx, name)
            lat, pks = caught if caught is not None else self._load_state(tx.conn, tx.row)
            if params is not None:
                lat.params = params
            horizon = float(horizon)
            if not math.isfinite(horizon) or horizon < 0:
                raise ValidationError("t", f"got {horizon!r}; the time span must be a finite number >= 0")
            step = float(step if step is not None else lat.params.dt)
            if horizon == 0:
                step = 1.0  # no step is taken; any positive value keeps the grid valid
            t0, c0 = lat.t, lat.coherence.copy()
            traj = simulate(lat, horizon, dt=step, inplace=True, progress=progress, should_stop=should_stop)
            self._save_state(tx.conn, pks, lat)
            tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid).values(t=float(lat.t)))
            txlog.append(tx.conn, tx.lid, name, "evolve", actor, lat.t, tx.version, [], after={
                "t0": t0, "horizon": horizon, "step": step, "params": lat.params.to_dict(), "gems": len(lat),
                "mean_coherence_delta": float((lat.coherence - c0).mean()) if len(lat) else 0.0})
            info = lattice_info({**tx.row, "t": lat.t}, len(lat))
        return traj, info

    def advance(self, name: str, dt: float, actor: Actor, *, step: float | None = None,
                expected_version: int | None = None) -> LatticeInfo:
        """Evolve the lattice by ``dt`` time units (in one step unless ``step``), persist, log."""
        return self._evolve(name, actor, dt, step=dt if step is None else step, expected_version=expected_version)[1]

    def simulate(self, name: str, horizon: float, actor: Actor, *, dt: float | None = None,
                 params: LatticeParams | None = None, progress: Callable[[float], None] | None = None,
                 expected_version: int | None = None,
                 should_stop: Callable[[], bool] | None = None) -> tuple[Trajectory, LatticeInfo]:
        """Evolve for ``horizon`` in steps of ``dt`` (default: the dt parameter), recording the trajectory.

        ``params`` overrides the lattice's parameters for this run only (recorded in the log).
        Bounded and cancellable like :func:`core.engine.trajectory.simulate`: over the work
        budget it raises WorkLimitExceeded, and when ``should_stop()`` returns True (or
        ``progress`` raises Cancelled) it stops; either way nothing is written.
        """
        return self._evolve(name, actor, horizon, dt, params, progress, expected_version,  # type: ignore[return-value]
                            should_stop=should_stop)

    def _observe_tx(self, tx: Tx, name: str, lat: Lattice, pks: np.ndarray, gem_ids: Sequence[str],
                    actor: Actor, strength: float | None) -> dict[str, Any]:
        """Observe ``gem_ids`` in ``lat`` (a load of them and their partners) and write it.

        The directly observed gems (not their partners) get ``last_observed`` (lattice
        time), ``observed_at`` (UTC now) and ``observations + 1``. Reinforcement
        (``Observation.reinforced``) also changes energies: they are saved with the rest of
        the state and the log entry's before/after carry an ``energy`` list (absent
        otherwise, so a seed-preset entry is exactly what it always was).
        """
        pos = self._positions(lat, gem_ids, name)
        obs = lat.observe(pos, strength)
        self._save_state(tx.conn, pks, lat, obs.indices)
        if pos.size:
            tx.conn.execute(update(GEM_STATES).where(GEM_STATES.c.gem_pk.in_(pks[np.unique(pos)].tolist()))
                            .values(last_observed=float(lat.t), observed_at=utcnow(),
                                    observations=func.coalesce(GEM_STATES.c.observations, 0) + 1))
        ids = [lat.ids[i] for i in obs.indices]
        before = {"coherence": obs.coherence_before.tolist(), "uncertainty": obs.uncertainty_before.tolist()}
        after = {"coherence": obs.coherence_after.tolist(), "uncertainty": obs.uncertainty_after.tolist()}
        if obs.reinforced:
            before["energy"], after["energy"] = obs.energy_before.tolist(), obs.energy_after.tolist()
        after.update(observed=list(dict.fromkeys(gem_ids)), strength=obs.strength.tolist())
        txlog.append(tx.conn, tx.lid, name, "observe", actor, lat.t, tx.version, ids, before=before, after=after,
                     energy=lat.energy[obs.indices])
        out = {"touched": ids, "strength": obs.strength.tolist(),
               "coherence_before": obs.coherence_before.tolist(), "coherence_after": obs.coherence_after.tolist()}
        if obs.reinforced:
            out.update(energy_before=before["energy"], energy_after=after["energy"])
        return out

    def observe(self, name: str, gem_ids: Sequence[str], actor: Actor, strength: float | None = None,
                expected_version: int | None = None) -> dict[str, Any]:
        """Observe gems (they and their entangled partners re-cohere); persist and log."""
        with self._write(name, actor, Permission.REFLECT, "observe gems", expected_version) as tx:
            self._catch_up_tx(tx, name)  # after the version check: a version read by info() still matches
            lat, pks = self._load_around(tx.conn, tx.row, list(gem_ids))
            out = self._observe_tx(tx, name, lat, pks, list(gem_ids), actor, strength)
            out["version"] = tx.version
        return out

    def apply_reflection(self, name: str, gem_ids_used: Sequence[str], actor: Actor, *,
                         strength: float | None = None, increment: float = 0.1,
                         reflection: dict[str, Any] | None = None) -> dict[str, Any]:
        """The state update after a reflection, in one transaction: observe the used gems,
        entangle (or strengthen) every co-used pair by ``increment``, log both, and insert
        the reflection record if given (keys of :meth:`record_reflection`)."""
        used = list(dict.fromkeys(gem_ids_used))
        with self._write(name, actor, Permission.REFLECT, "reflect") as tx:
            self._catch_up_tx(tx, name)
            lat, pks = self._load_around(tx.conn, tx.row, used)
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
    def _save_edge_diff(self, tx: Tx, name: str, actor: Actor, old: Lattice, new: Lattice, pks: np.ndarray) -> int:
        """Write the edges that differ between two lattices over the same gems, and log them."""
        oi, oj, ow = old.edge_arrays()
        ni, nj, nw = new.edge_arrays()
        before = {(int(a), int(b)): float(w) for a, b, w in zip(oi, oj, ow)}
        after = {(int(a), int(b)): float(w) for a, b, w in zip(ni, nj, nw)}
        keys = sorted(k for k in before.keys() | after.keys() if before.get(k, 0.0) != after.get(k, 0.0))
        if not keys:
            return 0
        pk_pairs = [(min(int(pks[i]), int(pks[j])), max(int(pks[i]), int(pks[j]))) for i, j in keys]
        tx.conn.execute(delete(ENTANGLEMENTS).where(ENTANGLEMENTS.c.gem_a == bindparam("a"),
                                                    ENTANGLEMENTS.c.gem_b == bindparam("b")),
                        [{"a": a, "b": b} for a, b in pk_pairs])
        rows = [{"lattice_id": tx.lid, "gem_a": a, "gem_b": b, "weight": after[k]}
                for (a, b), k in zip(pk_pairs, keys) if after.get(k, 0.0) > 0]
        if rows:
            tx.conn.execute(insert(ENTANGLEMENTS), rows)
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
            ga, gb = GEMS.alias("ga"), GEMS.alias("gb")
            rows = conn.execute(select(ga.c.gem_id, gb.c.gem_id, ENTANGLEMENTS.c.weight)
                                .join(ga, ga.c.pk == ENTANGLEMENTS.c.gem_a).join(gb, gb.c.pk == ENTANGLEMENTS.c.gem_b)
                                .where(ENTANGLEMENTS.c.lattice_id == lid).order_by(ga.c.seq, gb.c.seq)).all()
        return pd.DataFrame(rows, columns=["source", "target", "weight"])
