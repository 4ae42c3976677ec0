"""Coherence monitoring (issue 13, item 6): per lattice, the gems faded now and the gems
fading within the next day, as Prometheus gauges; the counts agree with evolving the
lattice for real."""
from __future__ import annotations

import numpy as np

from core.access import SYSTEM
from core.engine import Lattice, LatticeParams
from core.monitoring import WorkbenchCollector
from core.monitoring.prometheus import fading_summary
from core.router import build_router
from core.service import Workbench
from tests.store.conftest import sample_file  # noqa: F401  (fixture)


def scraped(collector) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in collector.collect() for s in fam.samples}


def test_counts_are_what_a_day_of_evolution_does():
    rng = np.random.default_rng(3)
    n = 5000
    lat = Lattice(energy=rng.uniform(0.2, 30, n), coherence=rng.uniform(0, 1, n), params=LatticeParams(), t=7.0)
    got = fading_summary(lat)
    theta = lat.params.fade_below
    assert got["fade_below"] == theta == 0.1 and got["fading_window"] == 24.0  # hours in a day
    assert got["faded"] == np.count_nonzero(lat.coherence <= theta)
    later = lat.copy().evolve(24.0)  # uncoupled: the decay is exact
    crossing = (lat.coherence > theta) & (later.coherence <= theta)
    # closed form vs 24 h of evolution: equal but for gems within rounding of the edge
    assert abs(got["fading_soon"] - np.count_nonzero(crossing)) <= 2
    assert 0 < got["fading_soon"] < n - got["faded"]


def test_the_window_is_one_day_in_the_lattices_unit():
    lat = Lattice(energy=[1.0, 1.0], coherence=[0.5, 0.9], params=LatticeParams(lambda_=1.0, time_unit="day"))
    got = fading_summary(lat)  # one day = 1 unit: ln(0.5/0.1) = 1.6 and ln 9 = 2.2 days away
    assert got["fading_window"] == 1.0 and got["fading_soon"] == 0 and got["faded"] == 0
    lat = Lattice(energy=[1.0, 1.0], coherence=[0.5, 0.9], params=LatticeParams(lambda_=2.0, time_unit="day"))
    assert fading_summary(lat)["fading_soon"] == 1  # 0.8 days and 1.1 days


def test_no_decay_means_nothing_fades_and_a_custom_threshold_is_used():
    lat = Lattice(coherence=[0.05, 0.3, 0.9], params=LatticeParams(lambda_=0.0))
    assert fading_summary(lat) == {"faded": 1.0, "fading_soon": 0.0, "fade_below": 0.1, "fading_window": 24.0}
    lat = Lattice(coherence=[0.05, 0.3, 0.9], params=LatticeParams(fade_below=0.5))
    assert fading_summary(lat)["faded"] == 2.0 and fading_summary(lat)["fading_soon"] == 1.0


def test_an_empty_lattice_has_nothing_fading():
    assert fading_summary(Lattice(params=LatticeParams()))["faded"] == 0.0


def test_collector_exports_the_fading_gauges_per_lattice():
    lat = Lattice(coherence=[0.05, 0.5, 0.9], params=LatticeParams())
    bare = Lattice(coherence=[0.5])
    samples = scraped(WorkbenchCollector(lambda: {"a": {**lat.summary(), **fading_summary(lat)},
                                                  "b": bare.summary()}))
    assert samples[("lattice_gems_faded", (("lattice", "a"),))] == 1
    assert samples[("lattice_gems_fading_soon", (("lattice", "a"),))] == 2  # ln 5 = 1.6 h, ln 9 = 2.2 h
    assert samples[("lattice_fade_below", (("lattice", "a"),))] == 0.1
    assert ("lattice_gems_faded", (("lattice", "b"),)) not in samples  # a bare summary: no fading figures
    assert samples[("lattice_gems", (("lattice", "b"),))] == 1


def test_workbench_scrape_counts_a_manual_and_a_caught_up_wall_lattice(store, sample_file):
    store.import_path("manual", sample_file, SYSTEM)
    store.import_path("wall", sample_file, SYSTEM, params={"time_unit": "second"})
    store.set_clock("wall", "wall", SYSTEM)
    wb = Workbench(store, router=build_router("offline"))
    samples = scraped(wb.collector())
    for name in ("manual", "wall"):
        lat = store.load(name).lattice
        expected = fading_summary(lat)
        assert samples[("lattice_gems_faded", (("lattice", name),))] == expected["faded"]
        assert samples[("lattice_gems_fading_soon", (("lattice", name),))] == expected["fading_soon"]
    # a wall lattice in seconds: the next 24 h are 86400 lattice units, every gem is gone by then
    assert fading_summary(store.load("wall").lattice)["fading_window"] == 86400.0
    assert (samples[("lattice_gems_faded", (("lattice", "wall"),))]
            + samples[("lattice_gems_fading_soon", (("lattice", "wall"),))]) == 12
    store.advance("manual", 100.0, SYSTEM)  # a manual lattice moves only when advanced
    assert scraped(wb.collector())[("lattice_gems_faded", (("lattice", "manual"),))] == 12
