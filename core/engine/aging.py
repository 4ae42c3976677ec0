"""Gems that enter a lattice with an age: the state they would have had, had they been added then.

A gem created ``age`` lattice time units before the lattice's clock enters with its state
advanced by that age. Uncoupled (K = 0, or a gem with no entangled partner among the
newcomers) this is the closed form of DESIGN section 2, per gem and vectorised:

    c <- c exp(-lambda_ age / E),   phi <- phi + f E age,   u <- min(1, u + age u_rate)

bit for bit what one ``Lattice.evolve(age)`` step gives that gem. Coupled newcomers are
replayed in time order: each enters at its creation time and the ones already in evolve,
coupled, to the next creation time.
"""
from __future__ import annotations

import numpy as np

from core.errors import ValidationError
from core.engine.lattice import Lattice
from core.engine.limits import MAX_SIM_CELLS, MAX_TIME, WorkLimitExceeded
from core.engine.params import LatticeParams


def aged_states(energy: np.ndarray, phase: np.ndarray, coherence: np.ndarray, uncertainty: np.ndarray,
                age: np.ndarray, params: LatticeParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(phase, coherence, uncertainty)`` of gems advanced by their own ``age`` (lattice time
    units, >= 0, one per gem or one for all), closed form. New arrays; the inputs are untouched.

    Same expressions as ``Lattice.evolve`` (``-(lambda_ * dt) / E``, ``E * (f * dt)``,
    ``dt / (1 / u_rate)``), so a gem's result equals one evolve step of its age bit for bit.
    """
    ph, coh, unc = (np.array(a, dtype=np.float64, copy=True) for a in (phase, coherence, uncertainty))
    age_in_place(energy, ph, coh, unc, age, params)
    return ph, coh, unc


def age_in_place(energy: np.ndarray, phase: np.ndarray, coherence: np.ndarray, uncertainty: np.ndarray,
                 age: np.ndarray, params: LatticeParams) -> None:
    """:func:`aged_states` written into ``phase``, ``coherence`` and ``uncertainty`` (float64
    arrays the caller owns, as an import's freshly parsed columns): one temporary array, ten
    passes over N, no other allocation."""
    energy = np.asarray(energy, dtype=np.float64)
    age = np.asarray(age, dtype=np.float64)
    if age.ndim == 0:
        age = np.full(energy.shape, float(age))
    if age.shape != energy.shape:
        raise ValidationError("created_at", f"need one age per gem ({energy.size}), got {age.size}")
    # min and max propagate NaN and see inf: two read-only passes check it all
    if age.size and not (0 <= age.min() and age.max() <= MAX_TIME):
        raise ValidationError("created_at", f"ages must be finite, >= 0 and <= {MAX_TIME:g} time units "
                                            "(a gem cannot be created in the future)")
    p = params
    tmp = np.multiply(age, -p.lambda_)  # -(lambda_ * age), the same product as evolve's -(lambda_ * dt)
    with np.errstate(over="ignore"):  # a tiny E: -inf, and exp(-inf) = 0 exactly (as in evolve)
        np.divide(tmp, energy, out=tmp)
    np.exp(tmp, out=tmp)
    coherence *= tmp
    np.multiply(age, p.f, out=tmp)
    tmp *= energy
    phase += tmp
    if p.u_rate:
        np.divide(age, 1.0 / p.u_rate, out=tmp)
        uncertainty += tmp
        uncertainty[uncertainty > 1.0] = 1.0


def enter_with_age(lattice: Lattice, created: np.ndarray, now: float) -> Lattice:
    """A copy of ``lattice`` (gems at the state they had when created, edges among them) in which
    gem i has lived from ``created[i]`` to ``now`` (lattice time units), clock set to ``now``.

    Gems without an entangled partner, or every gem when the lattice is uncoupled, take the
    closed form; coupled gems enter one creation time after another and evolve together in
    between. WorkLimitExceeded when that replay (creation times x coupled gems) is over
    MAX_SIM_CELLS; nothing is changed then.
    """
    created = np.asarray(created, dtype=np.float64)
    if created.shape != (len(lattice),):
        raise ValidationError("created_at", f"need one creation time per gem ({len(lattice)}), got {created.size}")
    if created.size and not np.isfinite(created).all():
        raise ValidationError("created_at", "creation times must be finite numbers")
    age = now - created
    out = lattice.copy()
    coupled = np.zeros(len(lattice), dtype=bool)
    if lattice.coupled:
        ei, ej, _ = lattice.edge_arrays()
        coupled[ei] = coupled[ej] = True
    free = np.flatnonzero(~coupled)
    if free.size:
        ph, c, u = aged_states(lattice.energy[free], lattice.phase[free], lattice.coherence[free],
                               lattice.uncertainty[free], age[free], lattice.params)
        out.set_states(free, phase=ph, coherence=c, uncertainty=u)
    if coupled.any():
        _replay_coupled(lattice, out, np.flatnonzero(coupled), created, now)
    out.t = float(now)
    return out


def _replay_coupled(source: Lattice, out: Lattice, members: np.ndarray, created: np.ndarray, now: float) -> None:
    """Evolve the coupled ``members`` of ``source`` from their creation times to ``now``, in time
    order, and write their states into ``out``."""
    times = np.unique(created[members])
    if times.size * members.size > MAX_SIM_CELLS:
        raise WorkLimitExceeded("created_at", f"{times.size} creation times x {members.size} coupled gems is over "
                                              f"the budget of {MAX_SIM_CELLS:.3g}; import them with coupling K = 0 "
                                              "or in smaller batches - nothing was imported")
    if np.any(now - times < 0):
        raise ValidationError("created_at", "a gem cannot be created after the lattice's clock (in the future)")
    position = np.full(len(source), -1, dtype=np.int64)
    ei, ej, ew = source.edge_arrays()
    state = {name: getattr(source, name)[members].copy() for name in ("energy", "phase", "coherence", "uncertainty")}
    entered = np.zeros(members.size, dtype=bool)
    member_created = created[members]
    clock = times[0]
    for t_next in (*times[1:], now):
        entered |= member_created <= clock
        active = np.flatnonzero(entered)
        position[:] = -1
        position[members[active]] = np.arange(active.size)
        sub = Lattice(state["energy"][active], state["phase"][active], state["coherence"][active],
                      state["uncertainty"][active], params=source.params, t=float(clock))
        keep = (position[ei] >= 0) & (position[ej] >= 0)
        sub.set_edges(position[ei[keep]], position[ej[keep]], ew[keep])
        if t_next > clock:
            sub.evolve(float(t_next - clock))
        for name in ("phase", "coherence", "uncertainty"):
            state[name][active] = getattr(sub, name)
        clock = t_next
    out.set_states(members, phase=state["phase"], coherence=state["coherence"], uncertainty=state["uncertainty"])
