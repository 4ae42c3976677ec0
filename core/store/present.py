"""A wall-clock lattice's gem state as of now, computed in memory (reads write nothing).

A write catches a wall lattice up by one evolution step of the wall time since its anchor
(:meth:`core.store.state.StateMixin._catch_up_tx`, through ``simulate(lat, horizon,
dt=horizon)``). Reads (``get_gem``, ``list_gems``, ``export``) return the values that catch-up
would store at the same instant, without storing them: the functions here give that step and
the closed-form coherence (the one field list filters compare), the store's
:meth:`~core.store.state.StateMixin._state_now` the four state fields.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
from sqlalchemy import Connection, select

from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.store.repair import check_loadable
from core.store.tables import ENTANGLEMENTS, STATE


def catch_up_step(row: dict[str, Any], now: float) -> float | None:
    """The evolution step (lattice time units) a catch-up of the ``lattices`` ``row`` at ``now``
    (UTC epoch seconds) would take, or None: a manual lattice, or no wall time has passed.

    The step is ``(t + horizon) - t``, the step ``simulate``'s time grid takes (its last point
    lands on ``t + horizon``), so the values match a write's catch-up bit for bit."""
    if row.get("clock") != "wall" or row.get("wall_anchor") is None:
        return None
    horizon = (float(now) - float(row["wall_anchor"])) / LatticeParams.from_dict(row["params"]).time_unit_seconds
    if not horizon > 0:
        return None
    t0 = float(row["t"])
    return (t0 + horizon) - t0


def coherence_now(params: LatticeParams, energy: np.ndarray, coherence: np.ndarray, archived: np.ndarray,
                  step: float | None) -> np.ndarray:
    """Coherence after ``step`` time units for every active gem (archived gems are frozen: a
    catch-up evolves only the active ones), vectorised. The closed form ``c exp(-lambda_ dt / E)``
    in the expressions of ``Lattice._decay_factor`` (same bits; coherence does not depend on the
    phase, so this holds with coupling too)."""
    c = np.asarray(coherence, dtype=np.float64)
    if step is None or not c.size:
        return c
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # damaged rows are named elsewhere
        decay = np.exp(np.divide(-(params.lambda_ * step), np.asarray(energy, dtype=np.float64)))
    return np.where(np.asarray(archived, dtype=bool), c, c * decay)


def state_now(conn: Connection, row: dict[str, Any], pks: Sequence[int], gem_ids: Sequence[str],
              state: dict[str, Any], archived: Sequence[bool], now: float | None,
              load_state: Callable[[Connection, dict[str, Any]], tuple[Lattice, np.ndarray]]) -> dict[str, np.ndarray]:
    """The state (``STATE`` arrays) of the gems ``pks`` (ids ``gem_ids``) of lattice ``row``, read as ``state``,
    as a catch-up at ``now`` (UTC epoch seconds, default the current time) would store it,
    computed in ``conn``'s read and written nowhere.

    Archived gems stay as stored; a manual lattice, or no wall time passed, returns the values
    as they are. Uncoupled, only these gems are evolved (the closed form per gem); coupled
    phases (K != 0 with entanglements) depend on the whole lattice, so then every active gem is
    loaded (``load_state``: ``StateMixin._load_state``) and evolved, as the catch-up does.
    DamagedStateError for damaged gems, as a catch-up would raise."""
    values = {s: np.array(state[s], dtype=np.float64) for s in STATE}
    step = catch_up_step(row, time.time() if now is None else now)
    active = ~np.asarray(archived, dtype=bool)
    if step is None or not active.any():
        return values
    params = LatticeParams.from_dict(row["params"])
    if params.K != 0.0 and conn.execute(select(ENTANGLEMENTS.c.gem_a)
                                        .where(ENTANGLEMENTS.c.lattice_id == row["id"]).limit(1)).first():
        lat, all_pks = load_state(conn, row)
        if lat.coupled:
            lat.evolve(step)
            at = {int(k): i for i, k in enumerate(all_pks.tolist())}
            where = np.array([at[int(k)] for k, a in zip(pks, active) if a], dtype=np.int64)
            for s in STATE:
                values[s][active] = getattr(lat, s)[where]
            return values
    ids = [str(g) for g, a in zip(gem_ids, active) if a]
    part = [values[s][active] for s in STATE]
    check_loadable(row["name"], ids, part, row["t"])  # damaged state: say which gems and how to repair
    lat = Lattice(*part, params=params, ids=ids, t=float(row["t"])).evolve(step)
    for s in STATE:
        values[s][active] = getattr(lat, s)
    return values
