"""Parameters page, issue 13 items 2 and 8: the decay fit gives λ ± SE and the half-life, warns
about a misfit, and the decay scale is shown with its half-life in sweeps and saved runs."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.ui.helpers import app_as, chart_json, charts, texts

PARAMETERS = "pages/5_Parameters.py"
LAMBDA = "Decay scale λ (1/hour)"


def upload(at, df: pd.DataFrame, name: str = "obs.csv"):
    at.file_uploader(key="fit_upload").set_value((name, df.to_csv(index=False).encode(), "text/csv")).run()
    assert not at.exception, at.exception
    return at


def shown_lambda(at) -> tuple[float, float]:
    """(λ, its standard error) as the fit tab's metric shows them."""
    value = next(m.value for m in at.main.get("metric") if m.label == LAMBDA)
    lam, se = re.fullmatch(r"(\S+) ± (\S+)", value).groups()
    return float(lam), float(se)


def sample(db) -> tuple[pd.DataFrame, float]:
    """The page's sample CSV for the demo lattice (what its Sample CSV button downloads) and the λ it was made with."""
    from ui.experiments import sample_lambda, sample_observations
    lat = db.load("demo").lattice
    return sample_observations(lat, lat.params), sample_lambda(lat.params)


def test_the_sample_csv_is_a_proper_sample(db):
    df, lam = sample(db)
    assert list(df.columns) == ["t", "coherence", "gem", "energy", "time_unit"]
    assert df["gem"].nunique() >= 3 and df.groupby("gem")["energy"].first().nunique() >= 3
    assert set(df["time_unit"]) == {"hour"} and lam == db.info("demo").params.lambda_
    energy = df.groupby("gem")["energy"].first()
    assert energy.max() / energy.min() > 3  # mixed energies: a shared τ cannot fit them
    start = df.groupby("gem")["coherence"].transform("first")
    residual = df["coherence"] - start * np.exp(-lam * df["t"] / df["energy"])
    assert 0.005 < residual.std() < 0.05  # it carries noise


def test_the_fit_tab_recovers_the_samples_lambda_and_applies_it(db):
    df, lam = sample(db)
    at = upload(app_as("researcher", PARAMETERS), df)
    fitted, se = shown_lambda(at)
    assert abs(fitted - lam) <= 2 * se
    button = at.button(key="fit_apply")
    offered = float(re.fullmatch(r"Use λ = (\S+) in this session", button.label).group(1))
    assert abs(offered - lam) <= 2 * se
    assert not at.warning and "No energies given" not in texts(at.info)
    half = next(m.value for m in at.main.get("metric") if m.label == "half-life at E = 1")
    days, spread = re.fullmatch(r"([\d.]+) days ± ([\d.]+) h", half).groups()  # the memory preset: 7 days
    assert abs(float(days) - 7) <= 2 * float(spread) / 24 + 0.05
    fig = next(chart_json(c) for c in charts(at) if chart_json(c)["layout"]["title"]["text"].startswith("Decay fit"))
    assert fig["layout"]["xaxis"]["title"]["text"] == "time (hours)"
    assert fig["layout"]["yaxis"]["title"]["text"] == "coherence c (0-1)"
    assert sum(tr["mode"] == "lines" for tr in fig["data"]) == df["gem"].nunique()  # a fitted curve per gem
    button.click().run()
    assert not at.exception, at.exception
    assert at.session_state["params"].lambda_ == pytest.approx(offered, rel=1e-3)
    assert abs(at.session_state["params"].lambda_ - lam) <= 2 * se


def test_without_the_energy_column_the_sample_shows_the_old_bias(db):
    """The seed's fit (one shared τ, energies ignored) misses the sample's λ: what the energies fix."""
    df, lam = sample(db)
    at = upload(app_as("researcher", PARAMETERS), df.drop(columns=["energy"]))
    fitted, se = shown_lambda(at)
    assert abs(fitted - lam) > 2 * se and "No energies given" in texts(at.info)
    assert at.button(key="fit_apply").label.endswith("in this session (for E = 1)")


def test_a_mis_specified_csv_gets_a_misfit_warning():
    t = np.linspace(0, 10, 25)
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"t": t, "coherence": 0.6 * np.exp(-0.5 * t) + 0.3 + rng.normal(0, 0.005, 25)})
    at = upload(app_as("researcher", PARAMETERS), df, "floor.csv")
    warning = texts(at.warning)
    assert "residuals show structure" in warning and "try fitting a floor C" in warning
    at.checkbox(key="fit_off").check().run()  # the fix the warning suggests
    assert not at.exception and not at.warning
    fitted, se = shown_lambda(at)
    assert abs(fitted - 0.5) <= 2 * se


def test_energy_and_time_unit_columns_are_checked_and_used():
    t = np.linspace(0, 3, 13)  # in days
    df = pd.DataFrame({"t": np.r_[t, t], "coherence": np.r_[np.exp(-24 * 0.1 * t), np.exp(-24 * 0.1 * t / 2)],
                       "gem": ["a"] * 13 + ["b"] * 13, "energy": [1.0] * 13 + [2.0] * 13, "time_unit": "day"})
    at = upload(app_as("researcher", PARAMETERS), df, "days.csv")
    assert "t converted from days to hours" in texts(at.caption)
    assert shown_lambda(at)[0] == pytest.approx(0.1)  # per hour, the lattice's unit
    bad = df.assign(energy=["x"] + [1.0] * 25)
    at = upload(at, bad, "bad.csv")
    assert "No fit: energy: row 2 has 'x'" in texts(at.error)
    at = upload(at, df.assign(time_unit=["day"] * 25 + ["fortnight"]), "unit.csv")
    assert "No fit: time_unit: row 27 has 'fortnight'" in texts(at.error)


def test_half_lives_next_to_the_decay_scale_in_sweeps_and_saved_runs(db):
    at = app_as("researcher", PARAMETERS)
    lam = db.info("demo").params.lambda_  # the memory preset's 0.004/hour: the sweep's range is around it
    assert at.number_input(key="sw_lambda__from").value == pytest.approx(lam / 4, rel=1e-2)
    assert at.number_input(key="sw_lambda__to").value == pytest.approx(lam * 3, rel=1e-2)
    at.number_input(key="sw_lambda__n").set_value(3)
    at.button(key="sw_run").click().run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if LAMBDA in d.value.columns)
    assert list(table.columns[:2]) == [LAMBDA, "half-life (E = 1)"]
    assert table["half-life (E = 1)"].str.contains(r"\d").all()
    fig = next(chart_json(c) for c in charts(at) if chart_json(c)["layout"]["title"]["text"].startswith("Sweep of"))
    assert fig["layout"]["xaxis"]["title"]["text"] == LAMBDA
    assert "half-life %{customdata}" in fig["data"][0]["hovertemplate"] and len(fig["data"][0]["customdata"]) == 3
    at.button(key="par_save_run").click().run()
    assert not at.exception, at.exception
    runs = next(d.value for d in at.dataframe if "run" in d.value.columns)
    assert list(runs.columns[:3]) == ["run", LAMBDA, "half-life (E = 1)"]
    assert runs["half-life (E = 1)"].iloc[0] == "7 days"
    visible = [c for d in at.dataframe for c in d.value.columns] + [
        str(chart_json(c)["layout"].get(axis, {}).get("title", {}).get("text", "")) for c in charts(at)
        for axis in ("xaxis", "yaxis")]
    assert not [c for c in visible if "lambda_" in str(c)]  # the field name is never shown
