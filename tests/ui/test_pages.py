"""One AppTest per page: runs, shows its charts, reacts to a control, enforces roles."""
from __future__ import annotations

import pytest

from tests.ui.helpers import app_as, chart_json, charts, texts, values

EVOLUTION = "pages/2_Evolution.py"
INTERFERENCE = "pages/3_Interference.py"
PARAMETERS = "pages/5_Parameters.py"


def titles_of(at) -> list[str]:
    return [chart_json(c)["layout"]["title"]["text"] for c in charts(at)]


# --------------------------------------------------------------- evolution
def test_evolution_shows_its_four_charts_and_reacts_to_the_horizon():
    at = app_as("viewer", EVOLUTION)
    assert not at.exception
    names = titles_of(at)
    assert names[:2] == ["Coherence over time", "Uncertainty over time"]
    assert names[2].startswith("Phasors at t = 0 hours") and names[3].startswith("Order parameter")
    x_max = values(chart_json(charts(at)[0])["data"][2]["x"]).max()
    at.number_input(key="evo_horizon").set_value(6.0).run()
    assert not at.exception
    assert values(chart_json(charts(at)[0])["data"][2]["x"]).max() < x_max
    assert "to 6 hours" in texts(at.caption)


def test_evolution_scrubber_moves_the_phasor_plot():
    at = app_as("viewer", EVOLUTION)
    at.slider(key="evo_time").set_value(5.0).run()
    assert not at.exception
    assert any(n.startswith("Phasors at t = 5 hours") for n in titles_of(at))


def test_evolution_play_toggles_to_pause():
    at = app_as("researcher", EVOLUTION)
    at.button(key="evo_play").click().run()
    assert not at.exception
    assert at.session_state["evo_playing"] is True
    assert at.button(key="evo_play").label == "Pause"


def test_viewer_advance_is_refused_by_the_engine(private_demo):
    import pytest

    from core.access import Actor, PermissionDenied
    from ui.context import lattice_source
    at = app_as("viewer", EVOLUTION)
    button = at.button(key="evo_advance")  # disabled, saying why (issue 11, item 22): no click to fail
    assert button.disabled and "viewer" in button.help
    with pytest.raises(PermissionDenied, match="edit"):  # and the engine refuses it anyway
        lattice_source().advance("demo", 1.0, Actor("viewer", "viewer"))
    at.run()
    assert "t = 0 hours" in " ".join(str(m.value) for m in at.sidebar.get("metric"))  # unchanged


def test_researcher_advance_moves_the_clock_in_memory(private_demo, monkeypatch):
    monkeypatch.setenv("LATTICE_SOURCE", "demo")  # the demo-file source (the default is the database)
    at = app_as("researcher", EVOLUTION)
    at.number_input(key="evo_adv_dt").set_value(2.5)
    at.button(key="evo_advance").click().run()
    assert not at.exception, at.exception
    assert "advanced by 2.5 to t = 2.5 hours" in texts(at.success)
    assert "memory only" in texts(at.success)
    assert "t = 2.5 hours" in " ".join(str(m.value) for m in at.sidebar.get("metric"))


# ------------------------------------------------------------ interference
def test_interference_shows_heatmap_network_pairs_and_R():
    at = app_as("viewer", INTERFERENCE)
    assert not at.exception
    names = titles_of(at)
    assert any(n.startswith("Interference I_ij") and "120 gems" in n for n in names)
    assert any(n.startswith("Entanglement network") for n in names)
    assert any(n.startswith("Order parameter") for n in names)
    assert len(at.dataframe) == 2 and len(at.dataframe[0].value) == 10
    heat = next(c for c in charts(at) if chart_json(c)["data"][0]["type"] == "heatmap")
    assert values(chart_json(heat)["data"][0]["z"]).size  # has cells


def test_interference_reacts_to_the_number_of_gems_and_pairs():
    at = app_as("viewer", INTERFERENCE)
    at.slider(key="int_count").set_value(30)
    at.slider(key="int_k").set_value(5).run()
    assert not at.exception
    assert any("30 gems" in n for n in titles_of(at))
    assert len(at.dataframe[0].value) == 5


# -------------------------------------------------------------- parameters
def test_parameters_has_a_control_for_every_parameter():
    """Every parameter that matters under the current scoring rule (product: no floor, no weights)."""
    from core.engine import PARAM_SPECS
    at = app_as("researcher", PARAMETERS)
    assert not at.exception
    from ui.controls import relevant
    keys = {w.key for w in list(at.number_input) + list(at.selectbox)}
    params = at.session_state["params"]
    only_elsewhere = {n for n in PARAM_SPECS if not relevant(n, params)}
    assert {"w_relevance", "w_recency", "w_importance"} <= only_elsewhere  # the demo's scoring is not weighted
    assert {f"param_{n}" for n in PARAM_SPECS if n not in only_elsewhere} <= keys
    assert not {f"param_{n}" for n in only_elsewhere} & keys
    assert titles_of(at)[0].startswith("Preview")


def test_changing_a_parameter_updates_preview_and_sidebar():
    at = app_as("researcher", PARAMETERS)
    before = values(chart_json(charts(at)[0])["data"][2]["y"])
    slower = at.session_state["params"].lambda_ / 5  # the lattice's own decay scale, five times slower
    at.number_input(key="param_lambda_").set_value(slower).run()
    assert not at.exception
    assert at.session_state["params"].lambda_ == pytest.approx(slower)
    after = values(chart_json(charts(at)[0])["data"][2]["y"])
    assert after[-1] > before[-1]  # slower decay: more coherence left at the horizon
    assert "(1 changed)" in " ".join(e.label for e in at.sidebar.expander)


def test_sweep_runs_with_progress_and_draws_a_line():
    at = app_as("researcher", PARAMETERS)
    at.number_input(key="sw_lambda__n").set_value(5)
    at.button(key="sw_run").click().run()
    assert not at.exception
    assert any(n.startswith("Sweep of") for n in titles_of(at))
    assert len(at.session_state["sw_result"]["df"]) == 5


def test_decay_fit_from_csv_and_bad_csv_is_an_error():
    at = app_as("researcher", PARAMETERS)
    rows = "t,coherence\n" + "\n".join(f"{t},{0.9 * 2.718281828 ** (-t / 3):.5f}" for t in range(10))
    at.file_uploader(key="fit_upload").set_value(("obs.csv", rows.encode(), "text/csv")).run()
    assert not at.exception
    assert any(m.label.startswith("τ") and m.value.startswith("3") for m in at.metric)
    assert any(n.startswith("Decay fit: shared τ = 3") for n in titles_of(at))  # no energies: one shared τ
    at.file_uploader(key="fit_upload").set_value(("bad.csv", b"time,value\n1,2\n", "text/csv")).run()
    assert not at.exception
    assert "No fit: t: column missing" in texts(at.error)
    at.file_uploader(key="fit_upload").set_value(("few.csv", b"t,coherence\n1,0.5\n", "text/csv")).run()
    assert not at.exception and "need at least" in texts(at.error)


def test_pages_run_on_the_store_source(tmp_path, monkeypatch):
    """The same pages over the Crystal Lattice DB (LATTICE_SOURCE=store): writes persist."""
    from core.service import ensure_demo
    from core.store import Store
    url = f"sqlite:///{tmp_path / 'ui.db'}"
    with Store.open(url) as store:
        ensure_demo(store)
    monkeypatch.setenv("LATTICE_SOURCE", "store")
    monkeypatch.setenv("LATTICE_DATABASE_URL", url)
    for page, n_charts in ((EVOLUTION, 4), (INTERFERENCE, 3), (PARAMETERS, 1)):
        at = app_as("researcher", page)
        assert not at.exception, (page, at.exception)
        assert len(charts(at)) >= n_charts
        assert "database" in texts(at.sidebar.caption)
    at.switch_page(EVOLUTION).run()
    at.button(key="evo_advance").click().run()
    assert "advanced by 1 to t = 1 hour." in texts(at.success) and "memory" not in texts(at.success)
    with Store.open(url) as store:
        assert store.load("demo").lattice.t == 1.0
