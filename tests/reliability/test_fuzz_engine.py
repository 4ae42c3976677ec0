"""Bad-input fuzzing of the engine's entry points: only the project's own errors, never a
traceback, never a change. Case counts are printed (-s) for the README's figures."""
import contextlib
import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cli import main
from core.errors import LatticeError, ValidationError
from core.engine import fit_decay
from core.engine import Lattice
from core.engine import PARAM_SPECS, LatticeParams

CASES = {"params": 0, "state": 0, "fit": 0, "cli": 0}

anything = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.lists(st.floats(), max_size=3), st.sampled_from(["1e309", "-0", "nan", " 2 ", "0x10"]),
)
names = st.one_of(st.sampled_from(list(PARAM_SPECS)), st.text(max_size=10))


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(names, anything, max_size=5))
def test_parameter_object_accepts_or_names_the_field(values):
    CASES["params"] += 1
    try:
        p = LatticeParams.from_dict(values)
    except ValidationError as exc:
        assert exc.field in set(values) and str(exc).startswith(exc.field)
        return
    for name, spec in PARAM_SPECS.items():  # whatever was accepted is in range
        v = getattr(p, name)
        if spec.kind == "choice":
            assert v in spec.choices
        else:
            assert math.isfinite(v) and spec.minimum <= v <= spec.maximum


floats_any = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(floats_any, floats_any, floats_any, floats_any), max_size=8), floats_any, st.lists(st.integers(-3, 10), max_size=4))
def test_lattice_state_dt_and_observations(rows, dt, observed):
    CASES["state"] += 1
    try:
        lat = Lattice(*map(list, zip(*rows))) if rows else Lattice()
    except LatticeError:
        return
    before = [a.copy() for a in (lat.energy, lat.phase, lat.coherence, lat.uncertainty)]
    for op in (lambda: lat.evolve(dt), lambda: lat.observe(observed)):
        try:
            op()
        except LatticeError:
            after = [lat.energy, lat.phase, lat.coherence, lat.uncertainty]
            assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, after)), "a refused call changed state"
        before = [a.copy() for a in (lat.energy, lat.phase, lat.coherence, lat.uncertainty)]
    assert ((lat.coherence >= 0) & (lat.coherence <= 1)).all() and ((lat.uncertainty >= 0) & (lat.uncertainty <= 1)).all()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(floats_any, floats_any), max_size=12), st.booleans(), st.booleans())
def test_fit_decay_only_raises_fit_errors(points, amp, off):
    CASES["fit"] += 1
    t, c = (list(x) for x in zip(*points)) if points else ([], [])
    try:
        fit = fit_decay(t, c, fit_amplitude=amp, fit_offset=off)
    except LatticeError:
        return
    assert fit.tau > 0


cli_words = st.lists(st.one_of(
    st.sampled_from(["simulate", "demo", "bench", "--t", "--dt", "--set", "--json", "--lattice", "--help", "-x",
                     "K=1", "lambda_=-1", "dt=0", "1", "-5", "nan", "inf", "1e400", "demo", "", "=", "k=2.5"]),
    st.text(max_size=8)), max_size=6)


@settings(max_examples=150, deadline=None)
@given(cli_words)
def test_cli_never_shows_a_traceback(argv):
    CASES["cli"] += 1
    if "bench" in argv:
        argv = [a for a in argv if a != "bench"]  # benchmarks take seconds; they have their own test
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors and --help
            code = exc.code
    assert code in (0, 2), (argv, code, err.getvalue())
    assert "Traceback" not in err.getvalue()


extreme_floats = st.one_of(floats_any, st.sampled_from([5e-324, 1e-300, 1e6, 1e6 + 1, 1e12, 1e13, 1e300, 1e305]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(extreme_floats, extreme_floats), min_size=1, max_size=6),
       st.dictionaries(st.sampled_from(["f", "lambda_", "K", "u_rate"]), extreme_floats, max_size=3),
       st.lists(extreme_floats, max_size=3), st.booleans())
def test_extreme_state_params_and_dt_never_reach_a_non_finite_state(rows, params, dts, coupled):
    """Issue 11, item 1: either a finite state or a LatticeError, and the lattice unchanged then."""
    CASES["extreme"] = CASES.get("extreme", 0) + 1
    energy, phase = (list(x) for x in zip(*rows))
    try:
        lat = Lattice(energy, phase, params=LatticeParams.from_dict(params))
    except LatticeError:
        return
    if coupled and len(lat) > 1:
        lat.add_edge(0, len(lat) - 1, 1.0)
    for dt in dts:
        before = [a.copy() for a in (lat.energy, lat.phase, lat.coherence, lat.uncertainty)] + [lat.t]
        try:
            lat.evolve(dt, max_work=1e6)
        except LatticeError:
            after = [lat.energy, lat.phase, lat.coherence, lat.uncertainty]
            assert all(np.array_equal(a, b) for a, b in zip(before, after)) and lat.t == before[4]
        assert all(np.isfinite(a).all() for a in (lat.energy, lat.phase, lat.coherence, lat.uncertainty))
        assert math.isfinite(lat.t)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([0.0, 1.0, 1e3, 1e4, 1e6, 1e13, math.inf]), st.sampled_from([1e-6, 0.05, 1.0, 1e3, -1.0]),
       st.sampled_from([1, 50, 5000]))
def test_simulate_and_sweep_are_bounded_or_refused(horizon, dt, n):
    """Issue 11, item 16: any horizon x dt x size is run within budget or refused clearly."""
    CASES["bounded"] = CASES.get("bounded", 0) + 1
    from core.engine import simulate, sweep
    lat = Lattice(np.linspace(0.5, 2, n))
    for run in (lambda: simulate(lat, horizon, dt=dt), lambda: sweep(lat, LatticeParams(), {"f": [0.5, 1.0]}, horizon)):
        try:
            run()
        except LatticeError as exc:
            assert str(exc)


def test_report_case_counts():
    print("\nfuzz cases tried:", CASES, "total", sum(CASES.values()))
    assert sum(CASES.values()) > 0 or pytest.skip("run with the fuzz tests")
