"""Trajectories are tidy and bounded in memory; the decay fit recovers known constants."""
import numpy as np
import pytest

from core.errors import FitError, ValidationError
from core.engine import fit_decay
from core.engine import Lattice
from core.engine import LatticeParams
from core.engine import simulate, time_grid
from core.engine.trajectory import PERCENTILES, percentiles


def test_trajectory_tables_are_tidy_and_match_the_lattice():
    rng = np.random.default_rng(0)
    lat = Lattice(rng.uniform(0.5, 2, 80), rng.uniform(0, 6, 80), rng.uniform(0.3, 1, 80), ids=[f"g{i}" for i in range(80)])
    traj = simulate(lat, horizon=2.0, dt=0.25, record=[3, 1])
    assert list(traj.series.columns) == ["time", "R", "psi", "mean_coherence", "mean_uncertainty",
                                         "c_p5", "c_p25", "c_p50", "c_p75", "c_p95"]
    np.testing.assert_allclose(traj.series.time, np.arange(9) * 0.25)
    assert list(traj.gems.columns) == ["time", "gem", "phase", "coherence", "uncertainty"]
    assert len(traj.gems) == 9 * 2 and set(traj.gems.gem) == {"g1", "g3"}
    assert lat.t == 0.0 and traj.final.t == pytest.approx(2.0)  # input untouched
    end = lat.copy().evolve(2.0)
    last = traj.gems[traj.gems.time == traj.gems.time.max()].set_index("gem")
    assert last.loc["g3", "coherence"] == pytest.approx(end.coherence[3])
    assert 0 <= last.loc["g1", "phase"] < 2 * np.pi
    assert traj.series.mean_coherence.iloc[-1] == pytest.approx(end.coherence.mean())
    assert traj.series.R.iloc[-1] == pytest.approx(abs(end.order_parameter()))
    assert (np.diff(traj.series.mean_coherence) < 0).all()
    assert (traj.series.c_p5 <= traj.series.c_p50).all() and (traj.series.c_p50 <= traj.series.c_p95).all()


@pytest.mark.parametrize("n", [1, 2, 5, 100, 1001])
def test_step_percentiles_are_numpys_bit_for_bit(n):
    rng = np.random.default_rng(n)
    for values in (rng.uniform(0, 1, n), np.round(rng.uniform(0, 1, n), 1), np.zeros(n)):
        assert np.array_equal(percentiles(values), np.percentile(values, PERCENTILES))


@pytest.mark.parametrize("t0, horizon, dt, K", [(0.0, 30.0, 0.1, 0.0), (123456.7, 7.05, 0.1, 0.0),
                                                  (0.0, 3.0, 0.25, 2.0)])
def test_every_step_records_the_lattices_exact_order_parameter(t0, horizon, dt, K):
    """The run's R and psi (advanced by closed-form phasor steps when uncoupled) equal the
    lattice's own order parameter at each time, to rounding, on long runs with a shortened
    last step, late clocks and coupling."""
    rng = np.random.default_rng(7)
    n = 300
    lat = Lattice(rng.uniform(0.2, 3, n), rng.uniform(0, 6, n), rng.uniform(0.3, 1, n),
                  params=LatticeParams(K=K), t=t0)
    for i in range(0, n - 1, 3):
        lat.add_edge(i, i + 1, 0.5)
    traj = simulate(lat, horizon=horizon, dt=dt)
    ref = lat.copy()
    expected = [ref.order_parameter()]
    for step_dt in np.diff(traj.series.time):
        expected.append(ref.evolve(step_dt).order_parameter())
    expected = np.asarray(expected)
    np.testing.assert_allclose(traj.series.R, np.abs(expected), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.cos(traj.series.psi), np.cos(np.angle(expected)), rtol=0, atol=1e-10)
    assert len(traj.series) == len(time_grid(t0, horizon, dt))


def test_large_runs_record_lattice_series_and_a_subset_of_gems():
    lat = Lattice(np.linspace(0.5, 2, 10_000), coherence=np.linspace(0, 1, 10_000))
    seen = []
    traj = simulate(lat, horizon=50.0, dt=0.1, progress=seen.append)
    assert len(traj.series) == 501
    assert traj.gems.gem.nunique() == 50 and len(traj.gems) == 501 * 50
    assert set(traj.gems.gem) == set(range(9950, 10_000))  # the most coherent
    assert traj.gems.memory_usage(deep=False).sum() < 5e6
    assert seen[-1] == 1.0 and len(seen) <= 102


def test_last_step_lands_on_the_horizon():
    np.testing.assert_allclose(time_grid(1.0, 1.0, 0.3), [1.0, 1.3, 1.6, 1.9, 2.0])
    np.testing.assert_allclose(time_grid(0.0, 0.0, 0.3), [0.0])
    for horizon, dt in [(-1, 0.1), (1, 0), (float("nan"), 0.1), (1e9, 1e-3)]:
        with pytest.raises(ValidationError):
            time_grid(0.0, horizon, dt)


def synthetic(tau, n, noise, rng, amplitude=1.0, offset=0.0):
    t = np.r_[0.0, np.sort(rng.uniform(0, 3 * tau, n - 1))]  # amplitude is c at the first time
    return t, amplitude * np.exp(-t / tau) + offset + rng.normal(0, noise, n)


def test_fit_recovers_tau_within_three_standard_errors_in_most_trials():
    hits = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        t, c = synthetic(2.5, 40, 0.02, rng, amplitude=0.9)
        fit = fit_decay(t, c)
        hits += abs(fit.tau - 2.5) <= 3 * fit.tau_se
        assert fit.tau_se > 0 and fit.n_points == 40
    assert hits >= 55  # 3 SE covers ~99.7%; allow for the nonlinear-fit approximation


def test_fit_with_offset_groups_and_curve():
    rng = np.random.default_rng(1)
    t1, c1 = synthetic(4.0, 50, 0.01, rng, amplitude=0.8, offset=0.1)
    t2, c2 = synthetic(4.0, 50, 0.01, rng, amplitude=0.5, offset=0.1)
    fit = fit_decay(np.r_[t1, t2], np.r_[c1, c2], groups=["a"] * 50 + ["b"] * 50, fit_offset=True)
    assert fit.tau == pytest.approx(4.0, abs=4 * fit.tau_se)
    assert fit.amplitude["a"] == pytest.approx(0.8, abs=0.05) and fit.amplitude["b"] == pytest.approx(0.5, abs=0.05)
    assert fit.offset == pytest.approx(0.1, abs=0.05)
    assert set(fit.curves) == {"a", "b"} and all(len(ct) == len(cc) == 200 for ct, cc in fit.curves.values())
    assert fit.lambda_for_energy(2.0) == pytest.approx(2.0 / fit.tau)
    assert fit.lambda_ == pytest.approx(1 / fit.tau) and not fit.energies_known  # no energies: one shared τ


def test_fit_matches_the_models_own_decay():
    lat = Lattice(energy=[2.0], params=LatticeParams(lambda_=0.5))
    ts = np.linspace(0, 10, 21)
    cs = [lat.copy().evolve(t).coherence[0] for t in ts]
    fit = fit_decay(ts, cs, fit_amplitude=False)
    assert fit.tau == pytest.approx(2.0 / 0.5, rel=1e-6)  # tau = E / lambda_


@pytest.mark.parametrize("t,c,match", [
    ([0, 1], [1.0, 0.5], "at least"),
    ([0, 1, 2, np.nan], [1, 0.5, 0.2, 0.1], "NaN"),
    ([0, 1, 2, 3], [1, 0.5, np.inf, 0.1], "NaN or infinite"),
    ([1, 1, 1, 1], [1, 0.5, 0.2, 0.1], "same time"),
    ([0, 1, 2], [1, 0.5], "same length"),
])
def test_fit_errors_are_clear(t, c, match):
    with pytest.raises(FitError, match=match):
        fit_decay(t, c)
