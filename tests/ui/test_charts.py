"""ui/charts.py: pure figure builders (no streamlit): labelled axes, units, float32, limits."""
from __future__ import annotations

import numpy as np
import pytest

from core.service import load_demo_lattice
from core.engine import fit_decay
from core.engine import Lattice
from core.engine import sweep
from core.engine import simulate
from ui import charts


@pytest.fixture(scope="module")
def demo():
    lattice, gems = load_demo_lattice()
    return lattice, gems, simulate(lattice, 6.0, dt=0.5)


def test_time_series_have_labelled_axes_with_units(demo):
    lattice, _, traj = demo
    ids = list(traj.gems["gem"].unique()[:3])
    for fig in (charts.coherence_over_time(traj.series, traj.gems, {}, ids, "hour", 2.0),
                charts.uncertainty_over_time(traj.series, traj.gems, {}, ids, "hour"),
                charts.order_parameter_over_time(traj.series, "minute")):
        assert fig.layout.xaxis.title.text in ("time (hours)", "time (minutes)")
        assert "(0-1)" in fig.layout.yaxis.title.text
        assert fig.layout.title.text
    band = charts.coherence_over_time(traj.series, traj.gems, {}, ids)
    assert len(band.data) == 2 + 2 + 1 + 3  # two bands (2 traces each), median, 3 gems
    assert charts.order_parameter_over_time(traj.series).layout.yaxis2.title.text == "ψ (degrees)"


def test_phasor_plot_uses_degrees_and_coherence_radius(demo):
    lattice, gems, _ = demo
    fig = charts.phasor_polar(lattice.phase, lattice.coherence, gems["title"], [0, 1], lattice.order_parameter())
    theta = np.asarray(fig.data[0].theta)
    assert theta.min() >= 0 and theta.max() < 360
    np.testing.assert_allclose(theta, np.degrees(lattice.wrapped_phase()))
    assert "degrees" in fig.layout.title.subtitle.text


def test_interference_view_matches_the_engine_and_is_float32():
    rng = np.random.default_rng(0)
    lat = Lattice(energy=rng.uniform(0.5, 2, 50), phase=rng.uniform(-9, 9, 50), coherence=rng.uniform(0, 1, 50))
    m, order, block = charts.interference_view(lat.coherence, lat.phase, range(50))
    assert block == 1 and m.dtype == np.float32
    assert np.all(np.diff(np.mod(lat.phase[order], 2 * np.pi)) >= 0)  # ordered by phase
    np.testing.assert_allclose(m, lat.interference_matrix(order), atol=1e-6)


def test_large_selection_is_block_averaged_and_says_so():
    rng = np.random.default_rng(1)
    n = 2500
    lat = Lattice(phase=rng.uniform(0, 6.3, n), coherence=rng.uniform(0, 1, n))
    m, order, block = charts.interference_view(lat.coherence, lat.phase, range(n), max_side=1000)
    assert block == 3 and m.shape[0] <= 1000
    full = lat.interference_matrix(order)
    np.testing.assert_allclose(m[0, 1], full[0:3, 3:6].mean(), atol=1e-5)
    fig = charts.interference_heatmap(m, [], block=block, total=n)
    assert "block-averaged" in fig.layout.title.subtitle.text and "2500 gems" in fig.layout.title.text
    with pytest.raises(ValueError):
        charts.interference_heatmap(np.zeros((1001, 1001)), [])


def test_network_places_gems_by_phase(demo):
    lattice, gems, _ = demo
    fig = charts.entanglement_network(lattice.phase, lattice.coherence, gems["title"], lattice.edge_arrays())
    assert "links" in fig.layout.title.text and "phase" in fig.layout.title.subtitle.text
    empty = charts.entanglement_network(np.zeros(3), np.ones(3), ["a", "b", "c"],
                                        (np.zeros(0, int), np.zeros(0, int), np.zeros(0)))
    assert empty.layout.annotations[0].text == "no entanglements in this lattice"


def test_sweep_line_and_heatmap(demo):
    lattice, _, _ = demo
    one = sweep(lattice, lattice.params, {"lambda_": [0.5, 1.0, 2.0]}, 3.0)
    fig = charts.sweep_chart(one, ["lambda_"], "mean_coherence", "mean coherence", {"lambda_": "λ (1/h)"})
    assert fig.data[0].type == "scatter" and fig.layout.xaxis.title.text == "λ (1/h)"
    two = sweep(lattice, lattice.params, {"lambda_": [0.5, 1.0], "f": [0.0, 1.0, 2.0]}, 3.0)
    heat = charts.sweep_chart(two, ["lambda_", "f"], "R", "R")
    assert heat.data[0].type == "heatmap" and np.asarray(heat.data[0].z).shape == (3, 2)


def test_decay_fit_chart_states_estimate_and_error():
    t = np.linspace(0, 10, 20)
    fit = fit_decay(t, 0.8 * np.exp(-t / 4))
    fig = charts.decay_fit_chart(t, 0.8 * np.exp(-t / 4), None, fit, "hour")
    assert fig.layout.title.text.startswith("Decay fit: shared τ = 4") and "±" in fig.layout.title.text
    assert "λ = 0.25" in fig.layout.title.text  # no energies: λ of a gem of energy 1 = 1/τ
    assert fig.layout.xaxis.title.text == "time (hours)"
