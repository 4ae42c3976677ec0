"""The engine reproduces the seed's QuantumState/calculate_interference exactly."""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine import Lattice
from core.engine import LatticeParams
from core.engine import QuantumState, calculate_interference

energy = st.floats(0.05, 20.0)
phase = st.floats(-50.0, 50.0)
unit = st.floats(0.0, 1.0)
dt = st.floats(0.0, 30.0)


def seed_evolve(E, phi, c, u, dt):
    """The seed's QuantumState.evolve, verbatim arithmetic."""
    c = c * np.exp(-dt / E)
    phi = phi + E * dt
    u = min(1.0, u + dt / 10)
    return phi, c, u


def make_state(E, phi, c, u):
    s = QuantumState()
    s.energy, s.phase, s.coherence, s.uncertainty = E, phi, c, u
    return s


def test_defaults_match_seed():
    s = QuantumState()
    assert (s.energy, s.phase, s.coherence, s.uncertainty) == (1.0, 0.0, 1.0, 0.1)
    s.evolve(0.5)  # in place, returns nothing like the seed
    assert s.coherence == np.exp(-0.5) and s.phase == 0.5 and s.uncertainty == min(1.0, 0.1 + 0.5 / 10)


@settings(max_examples=300, deadline=None)
@given(E=energy, phi=phase, c=unit, u=unit, dt=dt)
def test_quantum_state_is_bit_exact(E, phi, c, u, dt):
    s = make_state(E, phi, c, u)
    s.evolve(dt)
    assert (s.phase, s.coherence, s.uncertainty) == seed_evolve(E, phi, c, u, dt)


@settings(max_examples=200, deadline=None)
@given(E=energy, phi=phase, c=unit, u=unit, dt=dt)
def test_lattice_matches_seed_bit_for_bit(E, phi, c, u, dt):
    lat = Lattice([E], [phi], [c], [u])
    lat.evolve(dt)
    phi2, c2, u2 = seed_evolve(E, phi, c, u, dt)
    assert lat.phase[0] == phi2 and lat.uncertainty[0] == u2
    # vectorized exp may differ from the scalar libm call by at most one ulp
    assert abs(lat.coherence[0] - c2) <= np.spacing(c2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(energy, phase, unit, unit), min_size=1, max_size=40), dt)
def test_lattice_equals_loop_of_states(rows, dt):
    states = [make_state(*r) for r in rows]
    lat = Lattice(*map(list, zip(*rows)))
    for s in states:
        s.evolve(dt)
    lat.evolve(dt)
    np.testing.assert_array_equal(lat.phase, [s.phase for s in states])
    np.testing.assert_array_equal(lat.uncertainty, [s.uncertainty for s in states])
    np.testing.assert_allclose(lat.coherence, [s.coherence for s in states], rtol=4e-16, atol=0)


def test_uncertainty_clamps_at_one():
    s = make_state(1.0, 0.0, 1.0, 0.95)
    s.evolve(5.0)
    assert s.uncertainty == 1.0
    lat = Lattice(uncertainty=[0.95, 0.2], energy=[1.0, 2.0])
    lat.evolve(5.0)
    np.testing.assert_array_equal(lat.uncertainty, [1.0, 0.7])
    lat.evolve(100.0)
    np.testing.assert_array_equal(lat.uncertainty, [1.0, 1.0])


@settings(max_examples=200, deadline=None)
@given(E1=energy, p1=phase, c1=unit, E2=energy, p2=phase, c2=unit)
def test_calculate_interference_is_the_seed_formula(E1, p1, c1, E2, p2, c2):
    a, b = make_state(E1, p1, c1, 0.1), make_state(E2, p2, c2, 0.1)
    assert calculate_interference(a, b) == np.cos(p1 - p2) * c1 * c2
    lat = Lattice([E1, E2], [p1, p2], [c1, c2])
    assert math.isclose(lat.interference_matrix()[0, 1], calculate_interference(a, b), abs_tol=1e-12)


def test_optional_parameters_change_the_dynamics_as_specified():
    p = LatticeParams(lambda_=2.0, f=0.5, u_rate=0.3)
    s = QuantumState(lambda_=2.0, f=0.5, u_rate=0.3)
    s.energy, s.uncertainty = 4.0, 0.0
    s.evolve(1.0)
    lat = Lattice([4.0], uncertainty=[0.0], params=p).evolve(1.0)
    assert math.isclose(s.coherence, math.exp(-2.0 * 1.0 / 4.0))
    assert math.isclose(s.phase, 0.5 * 4.0) and math.isclose(s.uncertainty, 0.3)
    np.testing.assert_allclose([lat.coherence[0], lat.phase[0], lat.uncertainty[0]],
                               [s.coherence, s.phase, s.uncertainty])
