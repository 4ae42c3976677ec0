"""Issue 11, items 1 and 16 (engine side): no accepted state x parameters x dt reaches a
non-finite state, and the work of one request is bounded, with clear errors that change nothing."""
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.engine import STATE_SPECS, Lattice, LatticeParams, simulate, sweep
from core.engine.limits import MAX_ENERGY, MAX_PHASE, Cancelled, WorkLimitExceeded
from core.errors import ValidationError


def state_of(lat):
    return [a.copy() for a in (lat.energy, lat.phase, lat.coherence, lat.uncertainty)] + [lat.t]


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a[:4], b[:4])) and a[4] == b[4]


def test_a_huge_energy_is_refused_with_the_gem_named():
    with pytest.raises(ValidationError, match=r"energy: value 1e\+305 of gem 'big'"):
        Lattice([1.0, 1e305], ids=["ok", "big"])
    assert STATE_SPECS["energy"].maximum == MAX_ENERGY


def test_the_issue_scenario_is_refused_and_changes_nothing():
    # energy at the new limit, the page's largest dt, the largest frequency: the phase
    # would leave +-MAX_PHASE within a few steps; the step that would is refused.
    lat = Lattice([MAX_ENERGY, 1.0], ids=["hot", "cold"], params=LatticeParams(f=100.0))
    with pytest.raises(ValidationError) as info:
        for _ in range(10):
            before = state_of(lat)
            lat.evolve(10_000)
    msg = str(info.value)
    assert msg.startswith("phase:") and "'hot'" in msg and "1e+12" in msg and "nothing was changed" in msg
    assert same(state_of(lat), before)
    assert np.isfinite(lat.phase).all()


def test_the_clock_cannot_overflow():
    lat = Lattice(n=2)
    with pytest.raises(ValidationError, match="dt"):
        lat.evolve(1e300)
    assert lat.t == 0.0


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=64)
extreme = st.one_of(st.sampled_from([0.0, 5e-324, 1e-300, 1e-9, 1.0, 1e3, 1e6, 1e6 + 1, 1e12, 1e300, -1.0]),
                    finite_or_not)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(extreme, extreme), min_size=1, max_size=5), st.sampled_from([0.0, 1.0, 100.0]),
       st.sampled_from([0.0, 1.0, 100.0]), st.sampled_from([0.0, 10.0, -10.0]), st.lists(extreme, max_size=4))
def test_no_accepted_combination_reaches_a_non_finite_state(rows, f, lam, K, dts):
    energy, phase = zip(*rows)
    try:
        lat = Lattice(list(energy), list(phase), params=LatticeParams(f=f, lambda_=lam, K=K))
    except ValidationError:
        return
    if len(lat) > 1 and K:
        lat.add_edge(0, 1, 1.0)
    for dt in dts:
        before = state_of(lat)
        try:
            lat.evolve(dt, max_work=2e6)
        except ValidationError:
            assert same(state_of(lat), before)
        for a in state_of(lat)[:4]:
            assert np.isfinite(a).all()
        assert (np.abs(lat.phase) <= MAX_PHASE).all() and math.isfinite(lat.t)


def test_the_evolution_page_case_is_refused_before_allocating():
    # horizon 10,000 with dt 0.05: 200,001 points x 50 recorded gems (used to need 5.8 GB)
    lat = Lattice(np.linspace(0.5, 3, 60), np.linspace(0, 6, 60))
    tracemalloc.start()
    try:
        with pytest.raises(WorkLimitExceeded) as info:
            simulate(lat, 10_000, dt=0.05)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    assert "200001 time points x 50 recorded gems" in msg and "larger dt" in msg
    assert peak < 20e6


def test_simulate_cpu_budget_names_the_gems_and_dt():
    lat = Lattice(n=100_000)
    with pytest.raises(WorkLimitExceeded, match=r"time points x 100000 gems \(CPU\)"):
        simulate(lat, 1000, dt=0.1, record=[0])


def test_coupled_integration_is_bounded():
    # a wide frequency spread and strong coupling over a long span: millions of solver steps
    lat = Lattice(np.linspace(0.1, 1e4, 20), params=LatticeParams(f=100.0, K=10.0))
    for i in range(19):
        lat.add_edge(i, i + 1)
    before = state_of(lat)
    with pytest.raises(WorkLimitExceeded, match="smaller f, a smaller |K|"):
        lat.evolve(1000.0)
    assert same(state_of(lat), before)


def test_a_sweep_of_extreme_points_is_refused():
    lat = Lattice(np.linspace(0.1, 1e4, 20))
    for i in range(19):
        lat.add_edge(i, i + 1)
    with pytest.raises(WorkLimitExceeded, match="sweep's solver budget"):
        sweep(lat, LatticeParams(K=10.0), {"f": [50.0, 100.0]}, horizon=1000.0)


def test_a_sweep_too_large_for_its_lattice_is_refused_before_running():
    calls = []
    with pytest.raises(WorkLimitExceeded, match="at most"):
        sweep(Lattice(n=200_000), LatticeParams(), {"lambda_": np.linspace(0, 1, 50), "f": np.linspace(0, 1, 50)},
              horizon=1.0, progress=calls.append)
    assert calls == []


def test_sweep_and_simulate_can_be_cancelled():
    lat = Lattice(n=10)
    done = []
    with pytest.raises(Cancelled, match="stopped on request"):
        sweep(lat, LatticeParams(), {"f": np.linspace(0, 1, 20)}, 1.0, progress=done.append,
              should_stop=lambda: len(done) >= 3)
    assert len(done) == 3
    before = state_of(lat)
    with pytest.raises(Cancelled):
        simulate(lat, 10, dt=0.1, should_stop=lambda: True)
    assert same(state_of(lat), before)
