"""Finding and repairing damaged gem state (issue 11, item 1).

A lattice whose stored state is not finite or out of range (written before the engine's
bounds existed, or by hand in SQL) cannot be loaded: :func:`check_loadable` raises
:class:`DamagedStateError`, which names the gems and says how to repair them. An admin then
runs ``python -m core repair --lattice NAME [--dry-run]`` (:meth:`RepairMixin.repair`),
which resets, in one transaction logged as an ``edit`` and audited as ``lattice.repair``:

* a phase that is finite but beyond +-MAX_PHASE: wrapped mod 2 pi into [0, 2 pi);
* any other non-finite or out-of-range field (energy, phase, coherence, uncertainty): its
  default (:data:`core.engine.params.STATE_DEFAULTS`: E=1, phi=0, c=1, u=0.1);
* a non-finite or out-of-range lattice clock: 0.

Archived gems are repaired too (they would be damaged again when restored).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from sqlalchemy import Connection, select, update

from core.access import Actor, Permission
from core.errors import LatticeError
from core.engine.limits import MAX_TIME
from core.engine.params import STATE_DEFAULTS, STATE_SPECS
from core.store import bulk, txlog
from core.store.kernel import StoreKernel
from core.store.tables import GEM_STATES, GEMS, LATTICES, STATE

_SHOW = 5  # gems named in a message


class DamagedStateError(LatticeError):
    """A stored lattice holds non-finite or out-of-range state; the message says how to repair it."""


def damaged_mask(state: Sequence[np.ndarray]) -> np.ndarray:
    """Per gem: True if any field of ``state`` (arrays in STATE order) is invalid."""
    n = len(state[0]) if state else 0
    bad = np.zeros(n, dtype=bool)
    for name, values in zip(STATE, state):
        bad |= STATE_SPECS[name].invalid(values)
    return bad


def _clock_ok(t: Any) -> bool:
    return t is not None and math.isfinite(float(t)) and 0.0 <= float(t) <= MAX_TIME


def _describe(ids: Sequence[str], state: Sequence[np.ndarray], rows: np.ndarray) -> str:
    parts = []
    for i in rows[:_SHOW]:
        fields = [f"{name}={float(values[i])!r}" for name, values in zip(STATE, state)
                  if STATE_SPECS[name].invalid(values[i:i + 1])[0]]
        parts.append(f"{ids[i]!r} ({', '.join(fields)})")
    more = len(rows) - _SHOW
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def check_loadable(name: str, ids: Sequence[str], state: Sequence[np.ndarray], t: Any) -> None:
    """DamagedStateError naming the damaged gems (and clock) of lattice ``name``, if any."""
    bad = np.flatnonzero(damaged_mask(state))
    clock = _clock_ok(t)
    if not bad.size and clock:
        return
    what = []
    if bad.size:
        what.append(f"{bad.size} gem(s) with non-finite or out-of-range state: {_describe(ids, state, bad)}")
    if not clock:
        what.append(f"a lattice clock of {t!r} (allowed [0, {MAX_TIME:g}])")
    raise DamagedStateError(
        f"lattice {name!r} is damaged: {' and '.join(what)}. An admin can repair it with "
        f"`python -m core repair --lattice {name}` (add --dry-run to list the changes first): phases are "
        "wrapped mod 2 pi, other bad fields reset to their defaults")


class RepairMixin(StoreKernel):
    """``repair``: reset damaged state fields to safe values (admin only, audited, logged)."""

    @staticmethod
    def _raw_state(conn: Connection, lid: int) -> tuple[np.ndarray, list[str], list[np.ndarray]]:
        """Every gem's state (archived ones too) without validation; NULL (SQLite's NaN) as nan."""
        rows = conn.execute(select(GEMS.c.pk, GEMS.c.gem_id, *(GEM_STATES.c[s] for s in STATE))
                            .join(GEM_STATES, GEM_STATES.c.gem_pk == GEMS.c.pk)
                            .where(GEMS.c.lattice_id == lid).order_by(GEMS.c.seq)).all()
        pks = np.array([r[0] for r in rows], dtype=np.int64)
        ids = [r[1] for r in rows]
        state = [np.array([math.nan if r[2 + k] is None else float(r[2 + k]) for r in rows], dtype=np.float64)
                 for k in range(len(STATE))]
        return pks, ids, state

    @staticmethod
    def _repair_plan(ids: list[str], state: list[np.ndarray], t: Any) -> dict[str, Any]:
        bad = np.flatnonzero(damaged_mask(state))
        fixed = [values[bad].copy() for values in state]
        changes = []
        for k, i in enumerate(bad):
            fields = {}
            for s_idx, name in enumerate(STATE):
                v = float(state[s_idx][i])
                if not STATE_SPECS[name].invalid(state[s_idx][i:i + 1])[0]:
                    continue
                new = float(np.mod(v, 2 * np.pi)) if name == "phase" and math.isfinite(v) else STATE_DEFAULTS[name]
                fixed[s_idx][k] = new
                fields[name] = {"before": repr(v) if not math.isfinite(v) else v, "after": new}
            changes.append({"gem": ids[i], "fields": fields})
        clock = None if _clock_ok(t) else {"before": repr(t), "after": 0.0}
        return {"bad": bad, "fixed": fixed, "gems": changes, "clock": clock}

    def repair(self, name: str, actor: Actor, *, dry_run: bool = False) -> dict[str, Any]:
        """Reset the damaged state of lattice ``name`` (see the module docstring); admin only.

        Returns ``{"lattice", "dry_run", "repaired": [{"gem", "fields": {name: {"before", "after"}}}],
        "clock", "version"}``. ``dry_run``: only list what would change (nothing written).
        One transaction, logged as an ``edit`` of the repaired gems and audited.
        """
        self._require_admin(actor, "repair a lattice", "lattice.repair", name)
        if dry_run:
            with self._read() as conn:
                row = self._lattice_row(conn, name)
                _, ids, state = self._raw_state(conn, row["id"])
            plan = self._repair_plan(ids, state, row["t"])
            return {"lattice": name, "dry_run": True, "repaired": plan["gems"], "clock": plan["clock"],
                    "version": int(row["version"])}
        with self._write(name, actor, Permission.ADMIN, "repair a lattice") as tx:
            pks, ids, state = self._raw_state(tx.conn, tx.lid)
            plan = self._repair_plan(ids, state, tx.row["t"])
            bad = plan["bad"]
            t = float(tx.row["t"]) if plan["clock"] is None else 0.0
            if bad.size:
                bulk.update_by_key(tx.conn, GEM_STATES, "gem_pk", pks[bad],
                                   dict(zip(STATE, plan["fixed"])), bump="version")
                txlog.append(tx.conn, tx.lid, name, "edit", actor, t, tx.version, [ids[i] for i in bad],
                             before={s: [float(v) if math.isfinite(v) else repr(float(v)) for v in values[bad]]
                                     for s, values in zip(STATE, state)},
                             after={**dict(zip(STATE, plan["fixed"])), "repair": True})
            if plan["clock"] is not None:
                tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid).values(t=0.0))
                txlog.append(tx.conn, tx.lid, name, "clock", actor, 0.0, tx.version, [],
                             before={"t": plan["clock"]["before"]}, after={"t": 0.0, "repair": True})
            details = {"gems": len(plan["gems"]), "ids": [c["gem"] for c in plan["gems"][:50]],
                       "clock_reset": plan["clock"] is not None}
            self._audit(tx.conn, actor, "lattice.repair", name, details)
            version = tx.version
        return {"lattice": name, "dry_run": False, "repaired": plan["gems"], "clock": plan["clock"],
                "version": version}
