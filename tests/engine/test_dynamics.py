"""Closed form, coupling (Kuramoto) and observation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ValidationError
from core.engine import Lattice
from core.engine import LatticeParams


def random_lattice(n, seed=0, **params):
    rng = np.random.default_rng(seed)
    return Lattice(rng.uniform(0.2, 3.0, n), rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 1, n),
                   rng.uniform(0, 0.5, n), params=LatticeParams(**params))


@settings(max_examples=60, deadline=None)
@given(n_steps=st.integers(1, 200), dt=st.floats(0.001, 2.0), seed=st.integers(0, 10_000))
def test_n_steps_equal_one_step(n_steps, dt, seed):
    a, b = random_lattice(20, seed), random_lattice(20, seed)
    for _ in range(n_steps):
        a.evolve(dt)
    b.evolve(n_steps * dt)
    np.testing.assert_allclose(a.coherence, b.coherence, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(a.phase, b.phase, rtol=1e-9, atol=1e-9)
    assert a.t == pytest.approx(b.t)


def ring_edges(n, rng, extra=2):
    i = np.arange(n)
    src = np.concatenate([i, rng.integers(0, n, extra * n)])
    dst = np.concatenate([(i + 1) % n, rng.integers(0, n, extra * n)])
    keep = src != dst
    return src[keep], dst[keep], rng.uniform(0.3, 1.0, keep.sum())


def test_zero_coupling_reproduces_uncoupled_dynamics_exactly():
    rng = np.random.default_rng(1)
    coupled, plain = random_lattice(50, 1, K=0.0), random_lattice(50, 1)
    coupled.set_edges(*ring_edges(50, rng))
    for dt in (0.3, 1.7, 0.01):
        coupled.evolve(dt)
        plain.evolve(dt)
    np.testing.assert_array_equal(coupled.phase, plain.phase)
    np.testing.assert_array_equal(coupled.coherence, plain.coherence)


def test_coupling_synchronizes_a_connected_graph():
    rng = np.random.default_rng(2)
    n = 200
    # lambda_=0 keeps coherence at 1, so R measures phase alignment alone
    lat = Lattice(rng.uniform(0.9, 1.1, n), rng.uniform(0, 2 * np.pi, n), params=LatticeParams(K=4.0, lambda_=0.0))
    lat.set_edges(*ring_edges(n, rng, extra=4))
    r = [abs(lat.order_parameter())]
    for _ in range(5):
        lat.evolve(4.0)
        r.append(abs(lat.order_parameter()))
    assert r[0] < 0.2
    assert r[-1] > 0.9 and r[-1] > r[0] + 0.5


def test_coupled_integration_matches_a_fine_euler_reference():
    rng = np.random.default_rng(3)
    n = 12
    lat = Lattice(rng.uniform(0.5, 1.5, n), rng.uniform(0, 2 * np.pi, n), params=LatticeParams(K=1.5))
    lat.set_edges(*ring_edges(n, rng, extra=1))
    phi = lat.phase.copy()
    h, steps = 1e-4, 10_000  # integrate to t = 1 with RK4 at a tiny step
    for _ in range(steps):
        k1 = lat.phase_velocity(phi)
        k2 = lat.phase_velocity(phi + h / 2 * k1)
        k3 = lat.phase_velocity(phi + h / 2 * k2)
        k4 = lat.phase_velocity(phi + h * k3)
        phi = phi + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    lat.evolve(1.0)
    np.testing.assert_allclose(lat.phase, phi, atol=1e-6)


def test_observation_restores_coherence_and_spreads_by_weight():
    lat = Lattice(coherence=[0.2, 0.4, 0.5, 0.6], uncertainty=[0.8, 0.5, 0.5, 0.5],
                  params=LatticeParams(eta=0.5, rho=0.5))
    lat.add_edge(0, 1, 1.0)
    lat.add_edge(0, 2, 0.4)
    obs = lat.observe([0])
    c, u = lat.coherence, lat.uncertainty
    assert c[0] == pytest.approx(0.2 + 0.5 * 0.8) and u[0] == pytest.approx(0.8 * 0.5)
    assert c[1] == pytest.approx(0.4 + 0.25 * 0.6) and u[1] == pytest.approx(0.5 * 0.75)
    assert c[2] == pytest.approx(0.5 + 0.1 * 0.5) and u[2] == pytest.approx(0.5 * 0.9)
    assert c[3] == 0.6 and u[3] == 0.5  # not entangled: untouched
    assert obs.indices.tolist() == [0, 1, 2]
    np.testing.assert_allclose(obs.strength, [0.5, 0.25, 0.1])
    np.testing.assert_allclose(obs.coherence_before, [0.2, 0.4, 0.5])


def test_full_observation_restores_full_coherence():
    lat = Lattice(coherence=[0.1, 0.3], uncertainty=[0.9, 0.4])
    lat.observe([1])
    assert lat.coherence.tolist() == [0.1, 1.0] and lat.uncertainty.tolist() == [0.9, 0.0]


def test_observing_both_ends_takes_the_strongest_not_the_sum():
    lat = Lattice(coherence=[0.0, 0.0], params=LatticeParams(eta=0.6, rho=1.0))
    lat.add_edge(0, 1, 1.0)
    lat.observe([0, 1])
    np.testing.assert_allclose(lat.coherence, [0.6, 0.6])


def test_strengthen_entangles_co_used_gems_and_grows_weights():
    lat = Lattice(n=4)
    assert lat.strengthen([2, 0, 1], 0.3) == [(0, 1, 0.3), (0, 2, 0.3), (1, 2, 0.3)]
    lat.strengthen([0, 1], 0.8)
    assert lat.edge_weight(1, 0) == 1.0 and lat.edge_weight(0, 2) == 0.3 and lat.n_edges == 3
    lat.remove_edge(2, 0)
    assert lat.edge_weight(0, 2) == 0.0
    with pytest.raises(ValidationError, match="not entangled"):
        lat.remove_edge(0, 3)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "x"])
def test_evolve_rejects_bad_dt_and_changes_nothing(bad):
    lat = random_lattice(5)
    before = lat.coherence.copy(), lat.phase.copy(), lat.t
    with pytest.raises(ValidationError, match="dt"):
        lat.evolve(bad)
    np.testing.assert_array_equal(lat.coherence, before[0])
    np.testing.assert_array_equal(lat.phase, before[1])
    assert lat.t == before[2]


def test_coupled_integration_keeps_only_the_current_state():
    """Memory of a coupled step does not grow with the number of solver steps (issue 12, item 3)."""
    import tracemalloc

    rng = np.random.default_rng(3)
    n = 20_000

    def peak(dt: float) -> int:
        lat = Lattice(energy=rng.uniform(0.5, 2, n), phase=rng.uniform(0, 6.28, n), params=LatticeParams(K=0.5))
        lat.set_edges(np.arange(n - 1), np.arange(1, n), np.full(n - 1, 0.5))
        tracemalloc.start()
        lat.evolve(dt, max_work=1e12)
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return used

    peak(0.2)  # the first coupled step imports scipy; measure after it
    short, long = peak(2.0), peak(200.0)  # about 20x more solver steps
    assert long < 1.5 * short, (short, long)
