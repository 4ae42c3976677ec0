"""Time-aware memory in the engine (issue 13): half-lives in readable units, presets,
reinforcement by use, gems that enter with an age, and the fading forecast."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from core.errors import ValidationError
from core.engine import (Lattice, LatticeParams, apply_settings, aged_states, count_below, enter_with_age,
                         fading_soon, fading_times, humanize_duration, lambda_for_half_life, parse_duration,
                         preset_params)


# ------------------------------------------------------------------ durations
@pytest.mark.parametrize("text, unit, hours", [("14d", "hour", 336), ("3.5 days", "hour", 84), ("1h30min", "hour", 1.5),
                                               ("90s", "minute", 1.5), ("2w", "day", 14), ("12", "hour", 12),
                                               ("1y", "day", 365.25), ("36H", "hour", 36)])
def test_durations_parse_in_the_lattices_unit(text, unit, hours):
    assert parse_duration(text, unit) == pytest.approx(hours)


@pytest.mark.parametrize("bad", ["", "abc", "14x", "-3d", "1 30m", "nan", True, float("nan"), -1.0])
def test_bad_durations_name_the_field_and_the_form(bad):
    with pytest.raises(ValidationError, match="half_life"):
        parse_duration(bad, "hour", "half_life")


@pytest.mark.parametrize("value, unit, text", [(0.7, "hour", "42 min"), (76.8, "hour", "3.2 days"), (24, "hour", "24 h"),
                                               (2, "day", "2 days"), (1.0, "day", "24 h"), (math.inf, "hour", "∞"), (2000, "hour", "12 weeks"),
                                               (0.5, "second", "0.5 s")])
def test_durations_read_as_people_write_them(value, unit, text):
    assert humanize_duration(value, unit) == text


def test_the_default_half_life_is_the_seeds_42_minutes_and_a_half_life_sets_lambda():
    assert LatticeParams().half_life() == pytest.approx(math.log(2))
    assert LatticeParams().half_life_text() == "42 min"
    p = apply_settings(LatticeParams(), {"half_life": "14d", "k": "3"})
    assert p.half_life() == pytest.approx(14 * 24) and p.k == 3
    assert p.half_life(energy=2.0) == pytest.approx(28 * 24)  # t_1/2 = E ln2 / lambda_
    assert apply_settings(LatticeParams(), {"half_life": "inf"}).lambda_ == 0.0
    with pytest.raises(ValidationError, match="either half_life or lambda_"):
        apply_settings(LatticeParams(), {"half_life": "1d", "lambda_": "2"})
    with pytest.raises(ValidationError, match="half_life"):
        lambda_for_half_life(0.0)


# -------------------------------------------------------------------- presets
def test_presets_mean_the_same_half_life_in_any_time_unit():
    assert preset_params("seed") == LatticeParams()  # the seed, bit for bit
    for unit, week in (("hour", 168.0), ("day", 7.0), ("minute", 7 * 24 * 60.0), ("second", 7 * 86400.0)):
        memory = preset_params("memory", time_unit=unit)
        assert memory.half_life() == pytest.approx(week)
        assert memory.half_life_text() == "7 days"
        assert memory.scoring == "floor" and memory.reinforcement > 0 and not memory.forgets
    archive = preset_params("archive")
    assert archive.lambda_ == 0 and archive.half_life() == math.inf and not archive.forgets
    assert LatticeParams().forgets


def test_a_preset_keeps_what_it_does_not_set_and_reports_changes():
    base = LatticeParams(k=9, f=2.0, time_unit="day")
    memory = preset_params("memory", base)
    assert (memory.k, memory.f, memory.time_unit, memory.preset) == (9, 2.0, "day", "memory")
    assert memory.changed_from_preset() == []
    assert memory.replace(min_score=0.2).changed_from_preset() == ["min_score"]
    assert apply_settings(base, {"preset": "archive"}).lambda_ == 0.0
    with pytest.raises(ValidationError, match="preset"):
        preset_params("nope")


# -------------------------------------------------------------- reinforcement
states = st.lists(st.tuples(st.floats(0.1, 10), st.floats(0, 6), st.floats(0, 1), st.floats(0, 1)),
                  min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(states, st.lists(st.integers(0, 11), max_size=5), st.floats(0, 5))
def test_the_seed_preset_never_changes_energy_and_matches_the_seed_bit_for_bit(rows, picks, gap):
    arr = np.array(rows).T
    lat = Lattice(*arr, params=preset_params("seed"))
    ref = Lattice(*arr)
    idx = [i % len(lat) for i in picks]
    for x in (lat, ref):
        x.evolve(gap)
        x.observe(idx)
    obs = lat.observe(idx)
    ref.observe(idx)
    assert obs.energy_before is None and not obs.reinforced
    for name in ("energy", "phase", "coherence", "uncertainty"):
        assert np.array_equal(getattr(lat, name), getattr(ref, name))
    assert np.array_equal(lat.energy, arr[0])


def test_spaced_recalls_lengthen_the_half_life_as_documented():
    p = preset_params("memory")
    spaced, massed = Lattice(n=1, params=p), Lattice(n=1, params=p)
    week = p.half_life()
    expected = 1.0
    for _ in range(4):
        spaced.evolve(week * expected)  # one current half-life later: c = 0.5 before the recall
        c = spaced.coherence[0]
        assert c == pytest.approx(0.5)
        obs = spaced.observe([0])
        expected = min(expected * (1 + p.reinforcement * (1 - c)), p.energy_cap)
        assert spaced.energy[0] == pytest.approx(expected) and obs.energy_after[0] == pytest.approx(expected)
        massed.evolve(0.01)
        massed.observe([0])
    assert spaced.params.half_life(spaced.energy[0]) == pytest.approx(week * 1.5 ** 4)
    assert massed.energy[0] < 1.001  # recalls with no gap add almost nothing


def test_reinforcement_is_capped_and_partners_are_not_reinforced():
    p = preset_params("memory").replace(reinforcement=10.0, energy_cap=3.0)
    lat = Lattice([1.0, 1.0, 5.0], coherence=[0.0, 0.0, 0.0], params=p)
    lat.add_edge(0, 1, 1.0)
    obs = lat.observe([0, 2])
    assert lat.energy.tolist() == [3.0, 1.0, 5.0]  # capped; partner untouched; above the cap: never lowered
    assert obs.indices.tolist() == [0, 1, 2]
    assert obs.energy_before.tolist() == [1.0, 1.0, 5.0] and obs.energy_after.tolist() == [3.0, 1.0, 5.0]
    assert lat.coherence[1] == pytest.approx(0.5)  # the partner still re-coheres by eta*rho*w


# --------------------------------------------------------- entering with age
def test_an_aged_gem_equals_one_evolve_step_of_its_age_bit_for_bit():
    rng = np.random.default_rng(3)
    n = 200
    E, phi, c, u = rng.uniform(0.1, 5, n), rng.uniform(-3, 3, n), rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    age = rng.uniform(0, 500, n)
    for params in (LatticeParams(), preset_params("memory"), preset_params("archive")):
        ph, coh, unc = aged_states(E, phi, c, u, age, params)
        for i in range(0, n, 17):
            one = Lattice([E[i]], [phi[i]], [c[i]], [u[i]], params=params).evolve(age[i])
            assert (one.phase[0], one.coherence[0], one.uncertainty[0]) == (ph[i], coh[i], unc[i])


def test_entering_with_age_closed_form_and_in_time_order_when_coupled():
    rng = np.random.default_rng(4)
    n = 6
    E = rng.uniform(0.5, 2, n)
    created = np.array([0.0, 1.0, 1.0, 2.5, 0.5, 3.0])
    for K in (0.0, 1.5):
        lat = Lattice(E, rng.uniform(0, 6, n), params=LatticeParams(K=K))
        lat.add_edge(0, 1, 1.0)
        lat.add_edge(1, 3, 0.5)
        out = enter_with_age(lat, created, now=4.0)
        assert out.t == 4.0 and lat.t == 0.0  # the input is untouched
        np.testing.assert_allclose(out.coherence, np.exp(-(4.0 - created) / E))
        # gem 2 and gem 4 have no partner: the closed form even when coupled
        for i in (2, 4, 5):
            assert out.phase[i] == lat.phase[i] + E[i] * (4.0 - created[i])
        # gems 0, 1, 3 by hand: 0 alone until t=1, then 0+1 until 2.5, then 0+1+3 until 4
        a = Lattice(E[[0]], lat.phase[[0]], params=lat.params).evolve(1.0)
        b = Lattice(E[[0, 1]], [a.phase[0], lat.phase[1]], params=lat.params)
        b.add_edge(0, 1, 1.0)
        b.evolve(1.5)
        d = Lattice(E[[0, 1, 3]], [b.phase[0], b.phase[1], lat.phase[3]], params=lat.params)
        d.add_edge(0, 1, 1.0)
        d.add_edge(1, 2, 0.5)
        d.evolve(1.5)
        np.testing.assert_allclose(out.phase[[0, 1, 3]], d.phase, rtol=1e-9)


def test_a_gem_from_the_future_is_refused():
    with pytest.raises(ValidationError, match="future"):
        enter_with_age(Lattice(n=2), np.array([0.0, 5.0]), now=1.0)
    with pytest.raises(ValidationError, match="created_at"):
        enter_with_age(Lattice(n=2), np.array([0.0, np.nan]), now=1.0)


# ---------------------------------------------------------- fading forecast
def test_the_fading_forecast_is_when_evolution_crosses_the_threshold():
    rng = np.random.default_rng(5)
    lat = Lattice(rng.uniform(0.5, 3, 50), coherence=rng.uniform(0, 1, 50), t=10.0)
    times = fading_times(lat, 0.2)
    already = lat.coherence <= 0.2
    assert (times[already] == 10.0).all()
    for i in np.flatnonzero(~already)[:10]:
        at = lat.copy().evolve(times[i] - lat.t)
        assert at.coherence[i] == pytest.approx(0.2)
    idx, when = fading_soon(lat, within=1.0, threshold=0.2)
    assert (np.diff(when) >= 0).all() and (when <= 11.0).all() and (lat.coherence[idx] > 0.2).all()
    later = lat.copy().evolve(1.0)
    assert count_below(lat, 0.2, within=1.0) == int((later.coherence <= 0.2 + 1e-12).sum())
    assert np.isinf(fading_times(Lattice(n=3, params=preset_params("archive")))).all()
    with pytest.raises(ValidationError, match="threshold"):
        fading_times(lat, 1.5)
