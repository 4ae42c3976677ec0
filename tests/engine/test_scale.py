"""Issue 12, items 3 and 5a: a first step with a new dt, and the memory of a coupled step.

The fast paths (per-dt factors overwritten in place, max rotation from a cached max(E), the
coupled right-hand side over blocks of edges) must give the model's formulas
(docs/architecture.md, section 3) and a coupled step's memory must not grow by per-edge
temporaries."""
import tracemalloc

import numpy as np
import pytest

from core.engine import Lattice, LatticeParams
from core.engine.limits import MAX_PHASE
from core.errors import ValidationError


def random_lattice(n, seed=0, **params):
    rng = np.random.default_rng(seed)
    return Lattice(rng.uniform(0.2, 3.0, n), rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 1, n),
                   rng.uniform(0, 0.5, n), params=LatticeParams(**params))


def random_edges(n, m, rng):
    """About ``m`` distinct random edges among ``n`` gems (some gems stay isolated)."""
    i, j = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = i != j
    return i[keep], j[keep], rng.uniform(0.1, 1.0, keep.sum())


def test_a_first_step_with_each_new_dt_follows_the_formulas():
    lam, f, u_rate = 0.7, 2.5, 0.3
    lat = random_lattice(2000, 4, lambda_=lam, f=f, u_rate=u_rate)
    E, phi, c, u = (np.array(a) for a in (lat.energy, lat.phase, lat.coherence, lat.uncertainty))
    rng = np.random.default_rng(5)
    # new dts, repeated dts, a dt seen before, and energy edits in between (the caches must follow)
    for step, dt in enumerate([0.1, 0.1, 0.37, 0.05, 0.37, 1e-3, 2.0, 2.0, 0.1]):
        if step in (3, 7):
            k = int(rng.integers(0, len(E)))
            E[k] = 50.0 * (step + 1)
            lat.set_state(k, energy=E[k])
        lat.evolve(dt)
        c = c * np.exp(-lam * dt / E)
        phi = phi + f * E * dt
        u = np.minimum(1.0, u + dt * u_rate)
        np.testing.assert_allclose(lat.coherence, c, rtol=1e-15, atol=0)
        np.testing.assert_allclose(lat.phase, phi, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(lat.uncertainty, u, rtol=1e-15, atol=1e-16)


def test_a_raised_energy_is_seen_by_the_phase_limit_check():
    lat = Lattice([1.0, 1.0], [0.0, MAX_PHASE - 10.0])
    lat.evolve(1.0)
    lat.evolve(1.0)  # the factors of dt=1 are cached now
    lat.set_state(1, energy=100.0)  # gem 1 would now turn past the limit in one step
    before = lat.phase.copy()
    with pytest.raises(ValidationError, match="beyond the limit"):
        lat.evolve(1.0)
    np.testing.assert_array_equal(lat.phase, before)


def test_the_coupled_right_hand_side_is_the_kuramoto_sum():
    rng = np.random.default_rng(6)
    n = 3000
    lat = random_lattice(n, 6, K=1.7, f=0.8)
    lat.set_edges(*random_edges(n, 2 * n, rng))
    assert (np.bincount(lat.edge_arrays()[0], minlength=n) + np.bincount(lat.edge_arrays()[1], minlength=n)).min() == 0
    rhs = lat._phase_rhs()
    for phi in (lat.phase, rng.uniform(-50, 50, n)):
        np.testing.assert_allclose(rhs(phi), lat.phase_velocity(phi), rtol=1e-12, atol=1e-12)


def coupled_step_peak(n, m, seed=7):
    """Traced peak bytes of one coupled evolve, the lattice and its edge arrays built before."""
    rng = np.random.default_rng(seed)
    lat = random_lattice(n, seed, K=0.5)
    lat.set_edges(*random_edges(n, m, rng))
    lat.edge_arrays()
    tracemalloc.start()
    lat.evolve(0.5, max_work=1e12)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, lat.n_edges


def test_coupled_step_memory_has_no_per_edge_temporaries():
    """Past the edge arrays the lattice holds, a coupled step's memory does not grow with the
    number of edges (it was 16 bytes per edge: sin(phi_j - phi_i) over all edges at once)."""
    n = 40_000  # 80_000 edges and more: past the smallest block (65536), so both use full blocks
    coupled_step_peak(200, 400)  # the first coupled step imports scipy; measure after it
    few, m_few = coupled_step_peak(n, 2 * n)
    many, m_many = coupled_step_peak(n, 10 * n)
    per_edge = (many - few) / (m_many - m_few)
    assert per_edge < 2, per_edge
    state = 4 * 8 * n  # energy, phase, coherence, uncertainty
    assert few < 5 * state, few / state  # issue 12, item 5a: within 5x of the state arrays
