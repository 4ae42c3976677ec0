"""The Sweep tab's retrieval outcomes (1-D and 2-D) and the optimiser on the shipped MemoryBank set."""
from __future__ import annotations

import pytest

from core.access import SYSTEM
from tests.ui.helpers import ROOT, app_as, chart_json, charts, values

PARAMETERS = "pages/5_Parameters.py"
UNITS = (" s", " min", " h", " days", " day", " weeks", " week", " years", " year")
GEMS = ROOT / "data" / "memorybank-en" / "gems.jsonl"


@pytest.fixture
def memorybank(db):
    db.import_path("memorybank", GEMS, SYSTEM, preset="memory")
    return db


def retrieval(at):
    at.radio(key="sw_kind").set_value("Retrieval quality on questions").run()
    assert not at.exception, at.exception
    return at


def on_memorybank(role="researcher"):
    at = retrieval(app_as(role, PARAMETERS))
    at.button(key="rs_switch").click().run()  # the demo lattice does not hold the evidence
    assert at.session_state["lattice_name"] == "memorybank"
    return retrieval(at) if at.radio(key="sw_kind").value != "Retrieval quality on questions" else at


def frame(at, column):
    """The (last) dataframe with ``column``: the Tune tab's tables are on the page too."""
    return [d.value for d in at.dataframe if column in d.value.columns][-1]


def titled(at, start):
    return [chart_json(c) for c in charts(at) if chart_json(c)["layout"]["title"]["text"].startswith(start)]


def test_nothing_heavy_runs_before_a_button_and_the_wrong_lattice_is_named(memorybank):
    at = app_as("researcher", PARAMETERS)
    assert at.radio(key="sw_kind").value == "Lattice statistics at a horizon"
    at = retrieval(at)
    assert any("does not hold this set's evidence" in w.value for w in at.warning)
    assert "rs_result" not in at.session_state and "ro_result" not in at.session_state


def test_a_half_life_sweep_draws_the_metric_with_its_band_and_best_point(memorybank):
    at = on_memorybank()
    assert [t.value for t in at.text_input if t.key == "rs_half_life_from"] == ["1h"]
    at.number_input(key="rs_half_life_n").set_value(7).run()
    at.button(key="rs_run").click().run()
    assert not at.exception, at.exception
    fig = titled(at, "MRR against Half-life at energy 1")[0]
    assert fig["layout"]["xaxis"]["type"] == "log"
    ticks = fig["layout"]["xaxis"]["ticktext"]
    assert ticks[0] == "60 min" and ticks[-1] == "1 year" and all(t.endswith(UNITS) for t in ticks)
    names = [t.get("name") for t in fig["data"]]
    assert "best" in names and "MRR" in names
    line = fig["data"][names.index("MRR")]
    best = fig["data"][names.index("best")]
    assert values(best["y"])[0] == pytest.approx(values(line["y"]).max())
    table = frame(at, "MRR low")
    assert len(table) == 7 and {"Half-life at energy 1", "MRR", "MRR low", "MRR high"} <= set(table.columns)
    assert (table["MRR low"] <= table["MRR"]).all() and (table["MRR"] <= table["MRR high"]).all()
    assert table["MRR"].max() > table["MRR"].min()  # an hour forgets a week-old history, a year does not
    assert any("Best MRR" in m.value for m in at.markdown)


def test_a_two_parameter_sweep_is_a_labelled_heatmap_with_the_best_cell(memorybank):
    at = on_memorybank()
    at.selectbox(key="rs_scoring").set_value("floor").run()
    at.multiselect(key="rs_params").set_value(["half_life", "coherence_floor"]).run()
    at.number_input(key="rs_half_life_n").set_value(4).run()
    at.number_input(key="rs_coherence_floor_n").set_value(3).run()
    at.button(key="rs_run").click().run()
    assert not at.exception, at.exception
    fig = titled(at, "MRR over")[0]
    heat = fig["data"][0]
    assert heat["type"] == "heatmap" and values(heat["z"]).reshape(3, 4).shape == (3, 4)
    assert fig["layout"]["xaxis"]["title"]["text"] == "Half-life at energy 1"
    assert fig["layout"]["yaxis"]["title"]["text"] == "Coherence floor φ"
    assert all(t.endswith(UNITS) for t in fig["layout"]["xaxis"]["ticktext"])  # "60 min" … "52 weeks"
    assert "best cell: " in fig["layout"]["title"]["subtitle"]["text"]
    star = fig["data"][1]
    z = values(heat["z"]).reshape(3, 4)
    assert z[int(values(star["y"])[0]), int(values(star["x"])[0])] == pytest.approx(z.max())
    assert len(frame(at, "MRR low")) == 12


def test_a_bad_range_is_an_inline_error_and_nothing_runs(memorybank):
    at = on_memorybank()
    at.text_input(key="rs_half_life_from").set_value("soon").run()
    assert any("Half-life at energy 1" in e.value for e in at.error) and not at.exception
    assert at.button(key="rs_run").disabled
    at.text_input(key="ro_half_life_to").set_value("1 min").run()
    assert at.button(key="ro_run").disabled


def test_the_optimiser_reports_the_best_set_and_use_applies_it(memorybank):
    at = on_memorybank()
    at.number_input(key="ro_trials").set_value(8).run()
    at.button(key="ro_run").click().run()
    assert not at.exception, at.exception
    state = at.session_state["ro_result"]["result"]
    assert len(state.trials) == 8 and set(state.best_settings) == {"half_life"}
    assert state.best.low <= state.best.value <= state.best.high
    metric = next(m for m in at.metric if m.label == "Best MRR")
    assert metric.value == f"{state.best.value:.3f}"
    assert len(titled(at, "Search: MRR of each trial")) == 1
    trials = frame(at, "trial")
    assert len(trials) == 8 and trials["MRR"].is_monotonic_decreasing
    at.button(key="ro_use").click().run()
    assert not at.exception, at.exception
    assert any("This session now uses" in s.value for s in at.success)
    assert at.session_state["params"].lambda_ == pytest.approx(state.best_params.lambda_)
    assert at.session_state["param_lambda_"] == pytest.approx(state.best_params.lambda_)  # the Tune control


def test_the_same_seed_gives_the_same_search(memorybank):
    firsts = []
    for _ in range(2):
        at = on_memorybank()
        at.number_input(key="ro_trials").set_value(8).run()
        at.button(key="ro_run").click().run()
        firsts.append(at.session_state["ro_result"]["result"].trials)
    assert firsts[0].equals(firsts[1])


def test_use_the_best_point_of_a_sweep_applies_it_to_the_session(memorybank):
    at = on_memorybank()
    at.number_input(key="rs_half_life_n").set_value(4).run()
    at.button(key="rs_run").click().run()
    best = frame(at, "MRR low").sort_values("MRR", ascending=False, kind="stable").iloc[0]
    at.button(key="rs_use").click().run()
    assert not at.exception, at.exception
    assert any(f"Half-life at energy 1 = {best['Half-life at energy 1']}" in s.value for s in at.success)
    assert at.session_state["params"].half_life_text() == best["Half-life at energy 1"]


def test_the_upload_choice_asks_for_a_file_and_offers_no_run_meanwhile(memorybank):
    at = on_memorybank()
    at.radio(key="rs_source").set_value("Upload a JSONL file").run()
    assert any("Upload a question set" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "rs_run"]


def test_without_the_shipped_lattice_a_researcher_imports_it_then_switches(db):
    at = retrieval(app_as("researcher", PARAMETERS))
    assert not [b for b in at.button if b.key == "rs_switch"]
    at.button(key="rs_import").click().run()
    assert not at.exception, at.exception
    assert db.exists("memorybank")
    at.button(key="rs_switch").click().run()
    assert at.session_state["lattice_name"] == "memorybank"


def test_a_viewer_is_not_offered_the_import(db):
    at = retrieval(app_as("viewer", PARAMETERS))
    assert not [b for b in at.button if b.key in ("rs_import", "rs_switch")]
    assert any("Ask a researcher" in c.value for c in at.caption)


def test_a_viewer_may_sweep(memorybank):
    at = on_memorybank("viewer")
    at.number_input(key="rs_half_life_n").set_value(3).run()
    at.button(key="rs_run").click().run()
    assert not at.exception and len(frame(at, "MRR low")) == 3


def grid(names, values_by_name, metric_of):
    """A sweep_outcomes-shaped frame: every combination, the metric and a ±0.05 interval."""
    import itertools

    import pandas as pd
    rows = []
    for combo in itertools.product(*(values_by_name[n] for n in names)):
        row = dict(zip(names, combo))
        row["mrr"] = metric_of(*combo)
        row["mrr_low"], row["mrr_high"] = row["mrr"] - 0.05, row["mrr"] + 0.05
        rows.append(row)
    return pd.DataFrame(rows)


def test_a_numeric_axis_is_linear_with_plain_ticks_and_nan_never_wins():
    from ui.charts.experiments import best_row, outcome_line_chart
    df = grid(["alpha"], {"alpha": [0.5, 1.0, 2.0, 4.0]}, lambda a: float("nan") if a == 4.0 else 1 / (1 + abs(a - 1)))
    assert best_row(df, "mrr")["alpha"] == 1.0
    fig = outcome_line_chart(df, "alpha", "mrr", "MRR", "Coherence exponent α").to_plotly_json()
    assert fig["layout"]["xaxis"]["type"] == "linear" and "tickvals" not in fig["layout"]["xaxis"]
    assert "at 1" in fig["layout"]["title"]["subtitle"]["text"]
    band_hi, band_lo = fig["data"][0], fig["data"][1]
    assert list(values(band_hi["y"])[:3]) == pytest.approx([2 / 3 + 0.05, 1.05, 0.55])


def test_a_large_heatmap_labels_at_most_twelve_ticks_per_side_and_marks_the_best_cell():
    import numpy as np

    from ui.charts.experiments import outcome_heatmap
    hl = list(np.geomspace(1, 8760, 20))
    floor = list(np.linspace(0, 1, 20))
    df = grid(["half_life", "coherence_floor"], {"half_life": hl, "coherence_floor": floor},
              lambda h, f: -abs(np.log(h / 168)) / 10 - abs(f - 0.3))
    labels = {"half_life": "Half-life at energy 1", "coherence_floor": "Coherence floor φ"}
    fig = outcome_heatmap(df, ["half_life", "coherence_floor"], "mrr", "MRR", labels).to_plotly_json()
    assert len(fig["layout"]["xaxis"]["ticktext"]) == 12 and len(fig["layout"]["yaxis"]["ticktext"]) == 12
    assert "texttemplate" not in fig["data"][0]  # 400 cells: no numbers written in them
    best = df.loc[df["mrr"].idxmax()]
    star = fig["data"][1]
    assert hl[int(star["x"][0])] == best["half_life"] and floor[int(star["y"][0])] == best["coherence_floor"]


def test_stop_ends_the_sweep_and_the_search_and_keeps_nothing(memorybank, monkeypatch):
    from ui.cancel import LongWork
    at = on_memorybank()
    monkeypatch.setattr(LongWork, "should_stop", lambda self: True)  # as after a click on Stop
    at.button(key="rs_run").click().run()
    assert not at.exception and "rs_result" not in at.session_state
    assert any("retrieval sweep was stopped" in i.value for i in at.info)
    at.button(key="ro_run").click().run()
    assert not at.exception and "ro_result" not in at.session_state
    assert any("search was stopped" in i.value for i in at.info)
