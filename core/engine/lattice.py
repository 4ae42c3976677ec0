"""Struct-of-arrays lattice of N gems (docs/architecture.md, section 3; the contract path is core.lattice).

Long file: one cohesive class whose methods share the state arrays and their caches.

State lives in four float64 arrays (energy, phase, coherence, uncertainty); every
operation is vectorized numpy over them. Phase is stored *unwrapped* (as the seed's
``phase += E*dt`` does); everything that reads it goes through cos/sin, so nothing
depends on that choice, and ``wrapped_phase()`` gives [0, 2pi) for display.

Entanglements are a sparse, undirected, weighted edge list ``{(i, j): w}`` with i < j.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from core.errors import ValidationError
from core.engine.limits import MAX_ENERGY, MAX_ODE_WORK, MAX_PHASE, MAX_TIME, ODE_EVAL_OVERHEAD, WorkLimitExceeded, name_gems
from core.engine.params import STATE_SPECS, LatticeParams

# Block sizes of top_interference: 256 x 8192 float64 = 16 MB per block, so the
# scan's extra memory stays bounded whatever N is.
_ROW_BLOCK = 256
_COL_BLOCK = 8192
# Smallest edge block of the coupled right-hand side (see Lattice._phase_rhs): 65536 edges,
# 1.5 MB of temporaries; larger lattices use blocks of N/2 edges.
_EDGE_BLOCK_MIN = 1 << 16


@dataclass(frozen=True)
class Observation:
    """What one ``observe`` call changed: per touched gem, strength and before/after."""

    indices: np.ndarray  # gems whose state changed (observed and partners), ascending
    strength: np.ndarray  # effective re-coherence strength applied to each
    coherence_before: np.ndarray
    coherence_after: np.ndarray
    uncertainty_before: np.ndarray
    uncertainty_after: np.ndarray
    energy_before: np.ndarray | None = None  # set when reinforcement changed an energy (else None)
    energy_after: np.ndarray | None = None

    @property
    def reinforced(self) -> bool:
        return self.energy_before is not None


def _check_dt(dt: float, name: str = "dt") -> float:
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ValidationError(name, f"got {dt!r}; must be a finite number >= 0") from None
    if not math.isfinite(dt) or dt < 0:
        raise ValidationError(name, f"got {dt!r}; must be a finite number >= 0 (time only runs forward)")
    if dt > MAX_TIME:
        raise ValidationError(name, f"got {dt!r}; must be at most {MAX_TIME:g} time units")
    return dt


class _OverBudget(Exception):
    """Raised inside the ODE right-hand side when the evaluation budget is spent."""


class Lattice:
    """N gems as struct-of-arrays, with the seed's dynamics vectorized.

    Parameters
    ----------
    energy, phase, coherence, uncertainty : array-like of equal length, optional
        Initial state; a missing one takes the seed's default (1.0, 0.0, 1.0, 0.1).
        energy > 0, coherence and uncertainty in [0, 1], all finite.
    params : LatticeParams, optional
        Model parameters (decay scale, coupling, ...); defaults reproduce the seed.
    n : int, optional
        Number of gems when no array is given (all at the defaults).
    ids : sequence, optional
        Labels of the gems (for example database ids); default ``0..N-1``.
    t : float
        The lattice clock, in lattice time units.
    """

    def __init__(
        self,
        energy: Sequence[float] | np.ndarray | None = None,
        phase: Sequence[float] | np.ndarray | None = None,
        coherence: Sequence[float] | np.ndarray | None = None,
        uncertainty: Sequence[float] | np.ndarray | None = None,
        *,
        params: LatticeParams | None = None,
        n: int | None = None,
        ids: Sequence | None = None,
        t: float = 0.0,
    ):
        given = {k: v for k, v in
                 dict(energy=energy, phase=phase, coherence=coherence, uncertainty=uncertainty).items()
                 if v is not None}
        arrays: dict[str, np.ndarray] = {}
        for name, value in given.items():
            try:
                arr = np.array(value, dtype=np.float64).reshape(-1) if np.ndim(value) <= 1 else None
            except (TypeError, ValueError):
                raise ValidationError(name, "must be a sequence of numbers") from None
            if arr is None:
                raise ValidationError(name, f"must be one-dimensional, got shape {np.shape(value)}")
            arrays[name] = arr
        lengths = {name: len(a) for name, a in arrays.items()}
        if n is not None:
            lengths["n"] = int(n)
        if len(set(lengths.values())) > 1:
            raise ValidationError("state", f"arrays must have equal length, got {lengths}")
        size = next(iter(lengths.values()), 0)
        self.ids = list(ids) if ids is not None else list(range(size))
        if len(self.ids) != size:
            raise ValidationError("ids", f"expected {size} ids, got {len(self.ids)}")
        for name, spec in STATE_SPECS.items():
            spec.check(arrays.setdefault(name, np.full(size, spec.default)), self.ids)

        self._E = arrays["energy"]
        self._phi = arrays["phase"]
        self._c = arrays["coherence"]
        self._u = arrays["uncertainty"]
        # An upper bound of max|phase|, kept up to date in O(1) per step, so that evolve can
        # refuse a step that would leave +-MAX_PHASE without scanning the array every time.
        self._phase_bound = float(np.abs(self._phi).max()) if size else 0.0
        self.params = params if params is not None else LatticeParams()
        self.t = _check_dt(t, "t") if t else 0.0
        self._edges: dict[tuple[int, int], float] = {}
        self._edge_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._energy_version = 0  # bumped when energy changes (invalidates _step_factors)
        self.last_work = 0  # solver work of the last evolve (see evolve)
        self._step_cache: tuple | None = None  # (key, decay, rotation, max_rotation), see _step_factors
        self._energy_max: tuple[int, float] | None = None  # (energy version, max(E))

    # ------------------------------------------------------------------ state
    def __len__(self) -> int:
        return len(self._c)

    @staticmethod
    def _readonly(arr: np.ndarray) -> np.ndarray:
        view = arr.view()
        view.flags.writeable = False
        return view

    @property
    def energy(self) -> np.ndarray:
        return self._readonly(self._E)

    @property
    def phase(self) -> np.ndarray:
        """Unwrapped phase in radians (see ``wrapped_phase``)."""
        return self._readonly(self._phi)

    @property
    def coherence(self) -> np.ndarray:
        return self._readonly(self._c)

    @property
    def uncertainty(self) -> np.ndarray:
        return self._readonly(self._u)

    def wrapped_phase(self) -> np.ndarray:
        """Phase wrapped to [0, 2pi), for display."""
        return np.mod(self._phi, 2 * np.pi)

    def set_state(self, index: int, **values: float) -> None:
        """Set one gem's energy/phase/coherence/uncertainty, validated (user edits)."""
        index = self._check_index(index)
        new = {name: np.array([float(getattr(self, name)[index])]) for name in STATE_SPECS}
        for name, value in values.items():
            if name not in STATE_SPECS:
                raise ValidationError(name, f"unknown state field; known: {', '.join(STATE_SPECS)}")
            try:
                new[name] = np.array([float(value)])
            except (TypeError, ValueError):
                raise ValidationError(name, f"got {value!r}, which is not a number") from None
        for name, spec in STATE_SPECS.items():
            spec.check(new[name], [self.ids[index]])
        self._phase_bound = max(self._phase_bound, abs(float(new["phase"][0])))
        if new["energy"][0] != self._E[index]:
            self._energy_version += 1
        self._E[index], self._phi[index] = new["energy"][0], new["phase"][0]
        self._c[index], self._u[index] = new["coherence"][0], new["uncertainty"][0]

    def set_states(self, indices: Sequence[int], **values: Sequence[float]) -> None:
        """Set fields of several gems at once: one array per field, aligned with ``indices``.

        Validated as a whole before anything is written: nothing changes if a value is
        refused. (Applying logged values to a cached lattice: a reflection's gems.)
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValidationError("index", f"gem indices must be in [0, {len(self) - 1}]")
        arrays: dict[str, np.ndarray] = {}
        for name, value in values.items():
            if name not in STATE_SPECS:
                raise ValidationError(name, f"unknown state field; known: {', '.join(STATE_SPECS)}")
            try:
                arr = np.asarray(value, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise ValidationError(name, "must be numbers") from None
            if arr.size != idx.size:
                raise ValidationError(name, f"got {arr.size} values for {idx.size} gems")
            if STATE_SPECS[name].invalid(arr).any():
                STATE_SPECS[name].check(arr, [self.ids[i] for i in idx])
            arrays[name] = arr
        if "phase" in arrays and idx.size:
            self._phase_bound = max(self._phase_bound, float(np.abs(arrays["phase"]).max()))
        if "energy" in arrays and (arrays["energy"] != self._E[idx]).any():
            self._energy_version += 1
        targets = {"energy": self._E, "phase": self._phi, "coherence": self._c, "uncertainty": self._u}
        for name, arr in arrays.items():
            targets[name][idx] = arr

    def copy(self) -> "Lattice":
        """An independent copy (state, ids, edges). Not validated again: this lattice's
        state is valid by construction, and re-checking it cost more than the copy."""
        twin = Lattice.__new__(Lattice)
        twin._E, twin._phi, twin._c, twin._u = self._E.copy(), self._phi.copy(), self._c.copy(), self._u.copy()
        twin.ids = list(self.ids)
        twin._phase_bound, twin.params, twin.t = self._phase_bound, self.params, self.t
        twin._edges = dict(self._edges)
        twin._edge_arrays = self._edge_arrays  # replaced on change, never written in place
        twin._energy_version, twin.last_work = self._energy_version, 0
        twin._step_cache = None  # its buffers are rewritten in place (see _step_factors)
        twin._energy_max = self._energy_max
        return twin

    def _check_index(self, index: int) -> int:
        i = int(index)
        if not 0 <= i < len(self):
            raise ValidationError("index", f"gem index {index} out of range [0, {len(self) - 1}]")
        return i

    # -------------------------------------------------------------- dynamics
    def evolve(self, dt: float, *, max_work: float | None = None) -> "Lattice":
        """Advance every gem by ``dt`` (in place; returns self).

        Coherence and uncertainty follow the seed's closed form exactly. Phase rotates
        by ``f*E*dt``; with coupling K != 0 and entanglements, the phase ODE
        ``dphi_i/dt = f E_i + K sum_j w_ij sin(phi_j - phi_i) / deg_i`` is integrated
        with scipy's RK45. Decay and uncertainty do not depend on phase (nor phase on
        them), so splitting them off is exact, not an approximation.

        All or nothing: a step that would take a phase beyond +-MAX_PHASE or the clock beyond
        MAX_TIME, or a coupled step that needs more than ``max_work`` (default MAX_ODE_WORK)
        solver work, raises ValidationError and changes nothing. ``self.last_work`` is the
        solver work of the step (0 when uncoupled).
        """
        dt = _check_dt(dt)
        if self.t + dt > MAX_TIME:
            raise ValidationError("dt", f"advancing the clock from t={self.t:g} by {dt:g} would pass the limit "
                                        f"{MAX_TIME:g} time units; nothing was changed")
        p = self.params
        self.last_work = 0
        # The phase first (the only part that can fail), then coherence and uncertainty.
        if self.coupled and dt > 0:
            phi = self._integrate_coupled_phase(dt, MAX_ODE_WORK if max_work is None else max_work)
            phase_bound = self._check_phase(phi, dt)
            # After the integration, so that it is not alive at the solver's memory peak; not
            # cached (a coupled step costs hundreds of right-hand sides, the exp is noise).
            decay = self._decay_factor(dt)
            self._phi, self._phase_bound = phi, phase_bound
        else:
            decay, rotation, max_rotation = self._step_factors(dt)
            if self._phase_bound + max_rotation <= MAX_PHASE:
                self._phi += rotation
                self._phase_bound += max_rotation
            else:  # possibly over the limit: check exactly before changing anything
                phi = self._phi + rotation
                self._phase_bound = self._check_phase(phi, dt)
                self._phi = phi
        self._c *= decay
        if p.u_rate:
            # dt/(1/u_rate) rather than dt*u_rate: equals the seed's dt/10 bit for bit.
            self._u += dt / (1.0 / p.u_rate)
            self._u[self._u > 1.0] = 1.0  # min(1, u): a masked store beats np.minimum here
        self.t += dt
        return self

    @property
    def coupled(self) -> bool:
        """True when phases couple (K != 0 and at least one entanglement): evolution is then
        an ODE; otherwise every step is the closed form of DESIGN section 2."""
        return self.params.K != 0.0 and bool(self._edges)

    def _check_phase(self, phi: np.ndarray, dt: float) -> float:
        """max|phi|, or ValidationError naming the gems whose phase is not finite or beyond +-MAX_PHASE."""
        mag = np.abs(phi)
        bad = np.flatnonzero(~(mag <= MAX_PHASE))  # also catches nan
        if bad.size:
            worst = int(bad[np.argmax(np.nan_to_num(mag[bad], nan=np.inf))])
            raise ValidationError(
                "phase", f"evolving by dt={dt:g} would take the phase of {bad.size} gem(s) ({name_gems(self.ids, bad)}) "
                f"to {phi[worst]:.3g} rad, beyond the limit of +-{MAX_PHASE:g} rad (a gem turns by f*E*dt per step: "
                f"f={self.params.f:g}, E={self._E[worst]:g}); use a smaller dt, a smaller f or a lower energy, "
                "or have an admin wrap the phases with `python -m core repair` - nothing was changed")
        return float(mag.max()) if mag.size else 0.0

    def _step_factors(self, dt: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Per-gem decay factor ``exp(-lambda_ dt / E)``, rotation ``E f dt`` (rad) and max rotation.

        Cached for the last (lambda_, f, dt, energy version): a simulation steps with one dt,
        and recomputing the division and exp each step would triple the cost of ``evolve``
        (it is memory-bound). A new dt overwrites the two cached arrays in place: allocating
        two fresh N-arrays per step (and freeing the old ones, which the allocator hands back
        to the OS) cost more page faults than the exp itself (issue 12, item 3). Same bits
        either way. At the defaults the expressions equal the seed's: -(1.0*dt)/E == -dt/E
        and E*(1.0*dt) == E*dt.

        The max rotation is ``max(E) * (f dt)``, with max(E) cached per energy version: for
        ``f dt >= 0`` rounding is monotone, so this is exactly ``max(E * (f dt))``, without
        a pass over N per new dt.
        """
        p = self.params
        key = (p.lambda_, p.f, dt, self._energy_version)
        cache = self._step_cache
        if cache is None or cache[0] != key:
            n = len(self._E)
            if cache is not None and cache[1].shape == (n,):
                decay, rotation = cache[1], cache[2]
            else:
                decay, rotation = np.empty(n), np.empty(n)
            self._step_cache = None  # the buffers are being overwritten: no stale key on them meanwhile
            with np.errstate(over="ignore"):  # a tiny E: -inf, and exp(-inf) = 0 exactly
                np.divide(-(p.lambda_ * dt), self._E, out=decay)
            np.exp(decay, out=decay)
            np.multiply(self._E, p.f * dt, out=rotation)
            max_rotation = self._max_energy() * (p.f * dt) if n else 0.0
            self._step_cache = (key, decay, rotation, max_rotation)
        return self._step_cache[1], self._step_cache[2], self._step_cache[3]

    def _decay_factor(self, dt: float) -> np.ndarray:
        """``exp(-lambda_ dt / E)``: the cached one for this dt, else a fresh array (not cached)."""
        cache = self._step_cache
        if cache is not None and cache[0] == (self.params.lambda_, self.params.f, dt, self._energy_version):
            return cache[1]
        with np.errstate(over="ignore"):  # as in _step_factors, same bits
            decay = np.divide(-(self.params.lambda_ * dt), self._E)
        return np.exp(decay, out=decay)

    def _max_energy(self) -> float:
        """max(E), cached per energy version (0.0 for N = 0)."""
        if self._energy_max is None or self._energy_max[0] != self._energy_version:
            self._energy_max = (self._energy_version, float(self._E.max()) if self._E.size else 0.0)
        return self._energy_max[1]

    def phase_velocity(self, phase: np.ndarray | None = None) -> np.ndarray:
        """Right-hand side of the phase ODE (rad per time unit) at ``phase``."""
        phi = self._phi if phase is None else phase
        omega = self.params.f * self._E
        if self.params.K == 0.0 or not self._edges:
            return omega.copy()
        ei, ej, w = self.edge_arrays()
        inv_deg = self._inverse_degree()
        s = w * np.sin(phi[ej] - phi[ei])
        pull = np.bincount(ei, s, len(self)) - np.bincount(ej, s, len(self))
        return omega + self.params.K * pull * inv_deg

    def _inverse_degree(self) -> np.ndarray:
        ei, ej, _ = self.edge_arrays()
        deg = np.bincount(ei, minlength=len(self)) + np.bincount(ej, minlength=len(self))
        return np.divide(1.0, deg, out=np.zeros(len(self)), where=deg > 0)

    def _phase_rhs(self):
        """``dphi/dt`` of the coupled phase ODE as a function of phi (rad per time unit).

        The per-edge form of ``phase_velocity``, with the edges taken in blocks of N/2 (at
        least ``_EDGE_BLOCK_MIN``): its temporaries are those of one block (``sin(phi_j -
        phi_i)``, a gather or index shift, one array of per-gem sums), at most two N-arrays
        whatever the number of edges, plus the result. Over all the edges at once they were 16 bytes per
        edge (issue 12, item 5a). Edges are sorted by i, so a block's i-side sums need only
        the block's range of rows; the j-side is a bincount over all N per block.
        """
        ei, ej, w = self.edge_arrays()
        n, m = len(self), len(w)
        k_inv_deg = self.params.K * self._inverse_degree()
        f, energy = self.params.f, self._E
        block = max(n // 2, _EDGE_BLOCK_MIN)
        blocks = [(a, min(a + block, m)) for a in range(0, m, block)]
        blocks = [(a, b, int(ei[a]), int(ei[b - 1]) + 1) for a, b in blocks]  # edges [a, b), rows [lo, hi)

        def rhs(phi: np.ndarray) -> np.ndarray:
            out = np.zeros(n)
            for a, b, lo, hi in blocks:
                s = phi[ej[a:b]]  # w * sin(phi_j - phi_i) of the block, in place
                s -= phi[ei[a:b]]
                np.sin(s, out=s)
                s *= w[a:b]
                out[lo:hi] += np.bincount(ei[a:b] - lo, s, hi - lo)
                out -= np.bincount(ej[a:b], s, n)
                del s
            out *= k_inv_deg
            out += energy * f  # omega = f E, made here (not kept between evaluations)
            return out

        return rhs

    def _integrate_coupled_phase(self, dt: float, max_work: float) -> np.ndarray:
        """The phases after ``dt`` of the coupled ODE (the lattice is not changed).

        Bounded: each right-hand-side evaluation costs ``gems + edges + ODE_EVAL_OVERHEAD``
        work; past ``max_work`` the integration stops with WorkLimitExceeded.

        Memory (issue 12, item 5a): RK45's stages and states (12 N-arrays while the right-hand
        side runs, 15 in its error estimate), the right-hand side's result and block
        temporaries, and K/deg (one N-array): a peak of about 16 N-arrays, 4x the four state
        arrays, and nothing per edge beyond the lattice's own edge arrays.
        """
        from scipy.integrate import RK45  # only coupled lattices need scipy (start-up time)

        n, n_edges = len(self), self.n_edges
        per_eval = n + n_edges + ODE_EVAL_OVERHEAD
        max_evals = max(1, int(max_work // per_eval))
        phase_rhs = self._phase_rhs()
        evals = 0

        def rhs(_t: float, phi: np.ndarray) -> np.ndarray:
            nonlocal evals
            evals += 1
            if evals > max_evals:
                raise _OverBudget
            return phase_rhs(phi)

        # The RK45 stepper itself, as solve_ivp drives it, but keeping only the current state:
        # solve_ivp stores every step (98x the state at 1e6 gems) although only the last is used.
        try:
            solver = RK45(rhs, 0.0, self._phi, dt, rtol=1e-8, atol=1e-9)
            while solver.status == "running":
                solver.step()
        except _OverBudget:
            spread = self.params.f * float(self._E.max() - self._E.min()) if n else 0.0
            raise WorkLimitExceeded(
                "dt", f"the coupled phase integration over dt={dt:g} needs more than {max_evals} solver evaluations "
                f"({n} gems, {n_edges} entanglements; budget {max_work:.3g} work units): the phase frequencies f*E "
                f"span {spread:.3g} rad per time unit and coupling K={self.params.K:g}; use a shorter time span, "
                "a smaller f, a smaller |K| (0 uncouples) or fewer gems - nothing was changed") from None
        self.last_work = evals * per_eval
        if solver.status != "finished":  # not expected for this non-stiff problem; never hide it
            raise RuntimeError("phase integration failed: the step size became too small")
        return solver.y.copy()

    def observe(self, indices: Iterable[int], strength: float | None = None) -> Observation:
        """Re-cohere observed gems and, by ``rho * w``, their entangled partners.

        Observed gem: ``c <- c + eta (1 - c)``, ``u <- u (1 - eta)``. Partner j of an
        observed gem i gets strength ``eta * rho * w_ij``. A gem reached several ways
        takes the strongest one (so the result does not depend on order).

        Reinforcement (``params.reinforcement`` = g > 0, the spacing effect): each directly
        observed gem's energy, and so its half-life ``E ln2 / lambda_``, is multiplied by
        ``1 + g (1 - c)`` with c its coherence just before, capped at ``params.energy_cap``
        (never lowered by the cap). A recall right after the last one (c near 1) adds almost
        nothing; one after a long gap adds up to a factor 1 + g. Partners are not reinforced.
        With g = 0 (the seed) energies are untouched.
        """
        eta = self.params.eta if strength is None else float(strength)
        if not (math.isfinite(eta) and 0.0 <= eta <= 1.0):
            raise ValidationError("eta", f"observation strength {strength!r} must be in [0, 1]")
        idx = np.unique(np.fromiter((self._check_index(i) for i in indices), dtype=np.int64))
        s = np.zeros(len(self))
        if self._edges and idx.size and self.params.rho > 0:
            observed = np.zeros(len(self), dtype=bool)
            observed[idx] = True
            ei, ej, w = self.edge_arrays()
            pw = eta * self.params.rho * w
            # edge (i, j): i observed lifts j, j observed lifts i
            np.maximum.at(s, ej[observed[ei]], pw[observed[ei]])
            np.maximum.at(s, ei[observed[ej]], pw[observed[ej]])
        s[idx] = np.maximum(s[idx], eta)
        touched = np.flatnonzero(s > 0) if eta > 0 else idx
        st = s[touched]
        c0, u0 = self._c[touched].copy(), self._u[touched].copy()
        energy = self._reinforce(idx, self._c[idx]) if self.params.reinforcement > 0 and eta > 0 else None
        self._c[touched] = c0 + st * (1.0 - c0)
        self._u[touched] = u0 * (1.0 - st)
        e0 = e1 = None
        if energy is not None:  # reported for every touched gem (partners: unchanged); idx is within touched
            e0, e1 = self._E[touched].copy(), self._E[touched].copy()
            e0[np.isin(touched, idx)] = energy[0]
        return Observation(touched, st, c0, self._c[touched].copy(), u0, self._u[touched].copy(), e0, e1)

    def _reinforce(self, idx: np.ndarray, coherence_before: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Multiply the energies of gems ``idx`` by ``1 + g (1 - c)``, capped; (before, after) or
        None when nothing changed."""
        p = self.params
        before = self._E[idx].copy()
        grown = before * (1.0 + p.reinforcement * (1.0 - coherence_before))
        after = np.where(before >= p.energy_cap, before, np.minimum(grown, p.energy_cap))
        after = np.minimum(after, MAX_ENERGY)
        if np.array_equal(after, before):
            return None
        self._E[idx] = after
        self._energy_version += 1
        return before, after

    # ---------------------------------------------------------- entanglement
    def add_edge(self, i: int, j: int, weight: float = 1.0) -> None:
        """Entangle gems i and j with weight in (0, 1] (replaces an existing weight)."""
        i, j = self._check_index(i), self._check_index(j)
        if i == j:
            raise ValidationError("edge", f"a gem cannot be entangled with itself (gem {i})")
        w = float(weight)
        if not (math.isfinite(w) and 0.0 < w <= 1.0):
            raise ValidationError("weight", f"got {weight!r}; allowed range (0, 1]")
        self._edges[(min(i, j), max(i, j))] = w
        self._edge_arrays = None

    def remove_edge(self, i: int, j: int) -> None:
        key = (min(int(i), int(j)), max(int(i), int(j)))
        if key not in self._edges:
            raise ValidationError("edge", f"gems {key[0]} and {key[1]} are not entangled")
        del self._edges[key]
        self._edge_arrays = None

    def edge_weight(self, i: int, j: int) -> float:
        """Weight of the edge between i and j, 0.0 if none."""
        return self._edges.get((min(int(i), int(j)), max(int(i), int(j))), 0.0)

    def strengthen(self, indices: Iterable[int], increment: float = 0.1) -> list[tuple[int, int, float]]:
        """Entangle every pair of ``indices`` (gems used together), or grow their weight.

        New pairs start at ``increment``; existing weights grow by it, capped at 1.
        Returns the ``(i, j, new_weight)`` of each pair.
        """
        idx = sorted({self._check_index(i) for i in indices})
        inc = float(increment)
        if not (math.isfinite(inc) and 0.0 < inc <= 1.0):
            raise ValidationError("increment", f"got {increment!r}; allowed range (0, 1]")
        changed = []
        for a_pos, i in enumerate(idx):
            for j in idx[a_pos + 1:]:
                w = min(1.0, self._edges.get((i, j), 0.0) + inc)
                self._edges[(i, j)] = w
                changed.append((i, j, w))
        if changed:
            self._edge_arrays = None
        return changed

    @property
    def n_edges(self) -> int:
        return len(self._edges)

    def edge_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Edges as three arrays ``(i, j, w)`` with i < j, sorted by (i, j)."""
        if self._edge_arrays is None:
            if self._edges:
                keys = np.array(sorted(self._edges), dtype=np.int64)
                w = np.array([self._edges[(int(a), int(b))] for a, b in keys])
                self._edge_arrays = (keys[:, 0].copy(), keys[:, 1].copy(), w)
            else:
                empty = np.zeros(0, dtype=np.int64)
                self._edge_arrays = (empty, empty.copy(), np.zeros(0))
        return self._edge_arrays

    def set_edges(self, i: Sequence[int], j: Sequence[int], w: Sequence[float]) -> None:
        """Replace all edges at once from arrays (bulk load), validated."""
        i, j, w = (np.asarray(x) for x in (i, j, w))
        if not (len(i) == len(j) == len(w)):
            raise ValidationError("edges", "source, target and weight arrays must have equal length")
        edges: dict[tuple[int, int], float] = {}
        for a, b, weight in zip(i.tolist(), j.tolist(), w.astype(float).tolist()):
            a, b = self._check_index(a), self._check_index(b)
            if a == b or not (math.isfinite(weight) and 0.0 < weight <= 1.0):
                raise ValidationError("edges", f"invalid edge ({a}, {b}, {weight}): need two distinct gems and weight in (0, 1]")
            edges[(min(a, b), max(a, b))] = weight
        self._edges = edges
        self._edge_arrays = None

    # ---------------------------------------------------------- interference
    def _phasor_components(self) -> np.ndarray:
        """(N, 2) array of ``[c cos phi, c sin phi]``: z = a + i b."""
        return np.column_stack((self._c * np.cos(self._phi), self._c * np.sin(self._phi)))

    def interference_matrix(self, indices: Sequence[int] | None = None, dtype=np.float64) -> np.ndarray:
        """N x N matrix ``I_ij = cos(phi_i - phi_j) c_i c_j`` (or of the gems ``indices``).

        Uses the rank-2 identity ``I = a a^T + b b^T`` (one BLAS product of an N x 2
        matrix with its transpose), never the cos of an N x N array. Pass
        ``dtype=np.float32`` for display-sized matrices (half the memory).
        """
        comp = self._phasor_components()
        if indices is not None:
            comp = comp[np.asarray(indices, dtype=np.int64)]
        comp = comp.astype(dtype, copy=False)
        return comp @ np.ascontiguousarray(comp.T)  # a contiguous right factor is 2x faster

    def interference_row_sums(self) -> np.ndarray:
        """``sum_j I_ij`` for every i in O(N): ``Re(z_i conj(sum z))``."""
        comp = self._phasor_components()
        return comp @ comp.sum(axis=0)

    def top_interference(self, k: int) -> list[tuple[int, int, float]]:
        """The k most constructive pairs ``(i, j, I_ij)``, i < j, largest first.

        Never builds the N x N matrix: gems are sorted by coherence and scanned in
        bounded blocks; since ``I_ij <= c_i c_j``, rows and columns whose bound falls
        below the current k-th best are skipped. With equal coherences the bound
        prunes nothing and this degrades to a blocked full scan (memory still bounded).
        """
        return self._extreme_pairs(k, sign=1.0)

    def bottom_interference(self, k: int) -> list[tuple[int, int, float]]:
        """The k most destructive pairs (most negative ``I_ij``), most negative first."""
        return [(i, j, -v) for i, j, v in self._extreme_pairs(k, sign=-1.0)]

    def _extreme_pairs(self, k: int, sign: float) -> list[tuple[int, int, float]]:
        n = len(self)
        k = int(k)
        if k < 0:
            raise ValidationError("k", f"got {k}; must be >= 0")
        k = min(k, n * (n - 1) // 2)
        if k == 0:
            return []
        order = np.argsort(-self._c, kind="stable")
        cs = self._c[order]
        sorted_comp = self._phasor_components()[order]
        comp = sorted_comp * sign  # left factor carries the sign: block = sign * I
        comp_t = sorted_comp.T.copy()  # (2, N) right factor, contiguous rows
        neg_cs = -cs  # ascending, for searchsorted

        best_v = np.empty(0)
        best_p = np.empty(0, dtype=np.int64)
        best_q = np.empty(0, dtype=np.int64)
        tau = -math.inf

        def columns_worth_scanning(p: int) -> int:
            """End (exclusive) of the columns q whose bound cs[p]*cs[q] can reach tau."""
            if tau == -math.inf or cs[p] <= 0.0:
                return n if (tau == -math.inf or tau <= 0.0) else p + 1
            threshold = tau / cs[p] * (1 - 1e-12) - 1e-300  # conservative by a hair
            return int(np.searchsorted(neg_cs, -threshold, side="right"))

        for p0 in range(0, n - 1, _ROW_BLOCK):
            if best_v.size == k and cs[p0] * cs[p0 + 1] < tau:
                break  # every remaining pair is bounded below the k-th best
            p1 = min(p0 + _ROW_BLOCK, n - 1)
            q0 = p0 + 1
            while q0 < columns_worth_scanning(p0):
                q1 = min(q0 + _COL_BLOCK, columns_worth_scanning(p0))
                block = comp[p0:p1] @ comp_t[:, q0:q1]
                if q0 < p1:  # the block touches the diagonal: keep only q > p
                    rows = np.arange(p0, p1)[:, None]
                    cols = np.arange(q0, q1)[None, :]
                    block[cols <= rows] = -np.inf
                flat = block.ravel()
                take = min(k, flat.size)
                cand = np.argpartition(flat, flat.size - take)[flat.size - take:]
                cand = cand[np.isfinite(flat[cand])]
                r, c = np.divmod(cand, q1 - q0)
                best_v = np.concatenate((best_v, flat[cand]))
                best_p = np.concatenate((best_p, r + p0))
                best_q = np.concatenate((best_q, c + q0))
                if best_v.size > k:
                    keep = np.argpartition(best_v, best_v.size - k)[best_v.size - k:]
                    best_v, best_p, best_q = best_v[keep], best_p[keep], best_q[keep]
                if best_v.size == k:
                    tau = float(best_v.min())
                q0 = q1
        i = order[best_p]
        j = order[best_q]
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        ranking = np.lexsort((hi, lo, -best_v))
        return [(int(lo[r]), int(hi[r]), float(best_v[r])) for r in ranking]

    def order_parameter(self) -> complex:
        """Kuramoto order parameter ``R e^{i psi} = mean(c e^{i phi})`` (0 for N = 0)."""
        if len(self) == 0:
            return 0j
        a, b = self._phasor_components().mean(axis=0)
        return complex(a, b)

    # ------------------------------------------------------------- summaries
    def summary(self) -> dict[str, float]:
        """Lattice-level figures: N, edges, t, mean coherence/uncertainty, R, psi."""
        z = self.order_parameter()
        return {
            "gems": len(self),
            "entanglements": self.n_edges,
            "t": self.t,
            "mean_coherence": float(self._c.mean()) if len(self) else 0.0,
            "mean_uncertainty": float(self._u.mean()) if len(self) else 0.0,
            "R": abs(z),
            "psi": math.atan2(z.imag, z.real),
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (f"Lattice(N={s['gems']}, edges={s['entanglements']}, t={s['t']:.4g}, "
                f"mean_coherence={s['mean_coherence']:.4f}, R={s['R']:.4f})")
