"""Bounds that keep the model finite and the work of one request bounded (issue 11, items 1 and 16).

State bounds (used by :data:`core.engine.params.STATE_SPECS`, so imports, edit forms, loads and
snapshots all enforce them):

* ``MAX_ENERGY``: energy E is in (0, 1e6]. With ``f <= 100`` a gem then turns by at most
  1e8 rad per time unit; 1e305 (which used to pass) overflowed the phase to ``inf``.
* ``MAX_PHASE``: the stored (unwrapped) phase stays within +-1e12 rad. At 1e12 a float64 still
  resolves 1e-4 rad; beyond it the phase means nothing. A step that would cross it is refused
  (``ValidationError`` naming the gems); ``python -m core repair`` wraps phases mod 2 pi.
* ``MAX_TIME``: the lattice clock stays within [0, 1e12] time units.

Work bounds (a viewer must not be able to exhaust the server with one request):

* ``MAX_SIM_CELLS``: time points x gems of one :func:`core.engine.trajectory.simulate`
  (CPU: every point evolves and measures every gem).
* ``MAX_RECORDED_CELLS``: time points x recorded gems (memory: the per-gem table holds one
  row per cell, about 100 bytes each).
* ``MAX_ODE_WORK``: solver work of one coupled ``evolve`` (right-hand-side evaluations x
  (gems + edges + ``ODE_EVAL_OVERHEAD``)). Large frequency spreads times long horizons make the
  adaptive integrator take millions of steps; past the budget the step is refused.
* ``MAX_SWEEP_WORK``: total work of one :func:`core.engine.sweep.sweep` (points x
  (gems + ``SWEEP_POINT_OVERHEAD``), plus the solver work of coupled points).

Long work is cancellable: ``simulate`` and ``sweep`` take ``should_stop()`` and raise
:class:`Cancelled` (nothing is changed) when it returns True; a ``progress`` callback may also
raise :class:`Cancelled` itself.
"""
from __future__ import annotations

from typing import Callable, Sequence

from core.errors import LatticeError, ValidationError

MAX_ENERGY = 1e6
MAX_PHASE = 1e12
MAX_TIME = 1e12

MAX_SIM_CELLS = 50_000_000
MAX_RECORDED_CELLS = 2_000_000
MAX_ODE_WORK = 50_000_000
ODE_EVAL_OVERHEAD = 1_000
MAX_SWEEP_WORK = 200_000_000
SWEEP_POINT_OVERHEAD = 10_000


class Cancelled(LatticeError):
    """Long work stopped on request (``should_stop()`` returned True); nothing was changed."""


class WorkLimitExceeded(ValidationError):
    """One request would need more work than its budget; the message has the numbers and what to change."""


def check_stop(should_stop: Callable[[], bool] | None, what: str) -> None:
    """Raise :class:`Cancelled` if ``should_stop()`` says so."""
    if should_stop is not None and should_stop():
        raise Cancelled(f"{what} was stopped on request; nothing was changed")


def name_gems(ids: Sequence, positions: Sequence[int], limit: int = 5) -> str:
    """``'a', 'b' and 3 more``: the gems at ``positions`` by id, for messages."""
    names = [repr(ids[int(i)]) if ids is not None and int(i) < len(ids) else f"#{int(i)}" for i in positions[:limit]]
    more = len(positions) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")
