"""Time-aware memory in the app (issue 13): half-lives on the controls and in the sidebar,
presets (session, new lattice, existing lattice with a confirm), the fading-soon list, the
demo reset, a gem's own times.

Each test has its own SQLite database with the demo lattice (tests/ui/conftest.py). The demo
ships with the memory preset; tests that check figures of the seed's parameters (half-life 42 min
at E = 1) give the demo those first (``seed_demo``).
"""
from __future__ import annotations

import math

import pytest

from core.access import SYSTEM
from core.engine import LatticeParams, preset_params
from tests.ui.helpers import app_as, texts

LATTICE = "pages/1_Lattice.py"
PARAMETERS = "pages/5_Parameters.py"


@pytest.fixture
def seed_demo(db):
    """The demo lattice with the seed's parameters (the defaults); request it with ``db``."""
    db.update_params("demo", LatticeParams(), SYSTEM)
    return db


def control_label(at, key: str) -> str:
    return next(w.label for w in list(at.number_input) + list(at.selectbox) + list(at.text_input) if w.key == key)


def keys(at) -> set[str]:
    return {w.key for w in list(at.number_input) + list(at.selectbox) + list(at.text_input)}


# --------------------------------------------------------------- half-life controls
def test_decay_control_shows_its_half_life_in_the_lattice_unit(db, seed_demo):
    at = app_as("researcher", PARAMETERS)
    assert not at.exception, at.exception
    assert control_label(at, "param_lambda_") == "Decay scale λ (1/hour) · half-life 42 min"
    assert control_label(at, "param_f") == "Frequency scale f (rad/hour)"
    assert "lambda_" not in " ".join(w.label for w in at.number_input)  # the name, never the field
    assert at.text_input(key="param_half_life").value == "42 min"
    at.number_input(key="param_lambda_").set_value(0.5).run()
    assert not at.exception, at.exception
    assert control_label(at, "param_lambda_").endswith("half-life 83 min")
    assert at.text_input(key="param_half_life").value == "83 min"  # kept in sync with λ


def test_half_life_text_sets_the_decay_scale(db, seed_demo):
    at = app_as("researcher", PARAMETERS)
    at.text_input(key="param_half_life").input("14d").run()
    assert not at.exception, at.exception
    lam = at.session_state["params"].lambda_
    assert lam == pytest.approx(math.log(2) / (14 * 24))
    assert at.number_input(key="param_lambda_").value == pytest.approx(lam)
    assert control_label(at, "param_lambda_").endswith("half-life 2 weeks")
    assert "Half-life at E = 1" in [m.label for m in at.sidebar.get("metric")]
    assert dict((m.label, m.value) for m in at.sidebar.get("metric"))["Half-life at E = 1"] == "2 weeks"
    assert not at.error


@pytest.mark.parametrize("text, expected", [("a fortnight", "give a duration such as 14d"),
                                            ("3 parsecs", "unknown unit"),
                                            ("1s", "shorter than the shortest allowed half-life"),
                                            ("-2h", "must be >= 0")])
def test_a_bad_half_life_is_refused_inline_and_changes_nothing(text, expected, seed_demo):
    at = app_as("researcher", PARAMETERS)
    at.text_input(key="param_half_life").input(text).run()
    assert not at.exception, at.exception
    assert at.session_state["params"] == LatticeParams()
    errors = texts(at.main.error)
    assert "Half-life at E = 1" in errors and expected in errors and "Nothing was changed" in errors
    assert at.text_input(key="param_half_life").value == text  # kept, to be corrected
    at.text_input(key="param_half_life").input("36h").run()
    assert at.session_state["params"].lambda_ == pytest.approx(math.log(2) / 36)
    assert not at.main.error


def test_scoring_rule_decides_which_retrieval_parameters_are_shown(db, seed_demo):
    at = app_as("researcher", PARAMETERS)
    floor_and_weights = {"param_coherence_floor", "param_w_relevance", "param_w_recency", "param_w_importance"}
    assert not floor_and_weights & keys(at)
    captions = texts(at.caption)
    assert ("Shown when they matter: Coherence floor φ under floor scoring; Relevance weight, Recency weight, "
            "Importance weight under weighted scoring.") in captions
    assert "Shown when they matter: Energy cap under reinforcement by use g > 0." in captions
    at.selectbox(key="param_scoring").set_value("floor").run()
    assert not at.exception, at.exception
    assert keys(at) & floor_and_weights == {"param_coherence_floor"}
    at.selectbox(key="param_scoring").set_value("weighted").run()
    assert keys(at) & floor_and_weights == floor_and_weights - {"param_coherence_floor"}
    at.number_input(key="param_w_recency").set_value(2.5).run()
    assert at.session_state["params"].w_recency == 2.5 and at.session_state["params"].scoring == "weighted"
    assert "param_energy_cap" not in keys(at)  # no reinforcement: the cap does nothing
    at.number_input(key="param_reinforcement").set_value(0.5).run()
    assert "param_energy_cap" in keys(at)


def test_preset_control_applies_the_preset_to_the_session(db, seed_demo):
    at = app_as("researcher", PARAMETERS)
    at.selectbox(key="param_preset").set_value("memory").run()
    assert not at.exception, at.exception
    params = at.session_state["params"]
    assert params == preset_params("memory", LatticeParams())
    assert at.text_input(key="param_half_life").value == "7 days"
    assert at.number_input(key="param_reinforcement").value == 1.0  # every control follows
    assert at.selectbox(key="param_scoring").value == "floor"
    assert "param_coherence_floor" in keys(at)
    assert "Preset **memory** applied" in texts(at.info)
    assert "Nothing changed from it" in texts(at.caption)
    at.number_input(key="param_energy_cap").set_value(8.0).run()
    assert "Changed from it: Energy cap" in texts(at.caption)
    assert "Preset **memory** · floor scoring" in texts(at.sidebar.caption)
    assert "Active parameters (1 changed)" in [e.label for e in at.sidebar.expander]  # from the preset
    assert "- Energy cap: **8**" in texts(at.sidebar.markdown)


# ------------------------------------------------------------------- presets on the lattice
def test_changing_the_lattice_preset_needs_a_confirm(db, seed_demo):
    at = app_as("researcher", LATTICE)
    assert "**Preset: seed**" in texts(at.markdown)
    at.selectbox(key="lat_preset_choice").set_value("memory").run()
    assert not at.exception, at.exception
    assert "Decay scale λ: 1 → 0.004126 1/hour" in texts(at.markdown)
    assert at.button(key="lat_preset_apply").disabled  # not before the confirm
    at.checkbox(key="lat_preset_sure").check().run()
    assert not at.button(key="lat_preset_apply").disabled
    at.button(key="lat_preset_apply").click().run()
    assert not at.exception, at.exception
    stored = db.info("demo").params
    assert stored.preset == "memory" and stored.half_life_text() == "7 days" and stored.scoring == "floor"
    assert "now uses the **memory** preset" in texts(at.success) and "42 min → 7 days" in texts(at.success)
    assert at.session_state["params"] == stored  # the session follows
    assert "**Preset: memory**" in texts(at.markdown)
    assert not at.checkbox(key="lat_preset_sure").value  # the confirm is not left ticked
    assert dict((m.label, m.value) for m in at.sidebar.get("metric"))["Half-life at E = 1"] == "7 days"


def test_a_lattice_changed_meanwhile_keeps_its_parameters(db, seed_demo):
    at = app_as("researcher", LATTICE)
    at.selectbox(key="lat_preset_choice").set_value("archive").run()
    at.checkbox(key="lat_preset_sure").check().run()
    db.advance("demo", 1.0, SYSTEM)  # someone else moves the lattice: the page's version is stale
    at.button(key="lat_preset_apply").click().run()
    assert not at.exception, at.exception
    assert "Preset not applied, nothing was changed" in texts(at.error)
    assert db.info("demo").params.preset == "seed"


def test_viewer_sees_the_preset_but_cannot_change_it_or_reset(db, seed_demo):
    at = app_as("viewer", LATTICE)
    assert not at.exception, at.exception
    assert "**Preset: seed**" in texts(at.markdown)
    assert "Changing the preset needs the researcher or admin role." in texts(at.info)
    assert not [b for b in at.button if b.key in ("lat_preset_apply", "lat_demo_reset")]


def test_a_new_lattice_from_an_import_gets_the_chosen_preset(db):
    at = app_as("researcher", LATTICE)
    assert not [s for s in at.selectbox if s.key == "lat_import_preset"]  # the current lattice exists
    at.file_uploader(key="lat_import_files").set_value([("notes.jsonl", b'{"content": "a note on sleep"}\n',
                                                          "application/jsonl")])
    at.text_input(key="lat_import_target").input("notes").run()
    assert at.selectbox(key="lat_import_preset").value == "seed"
    at.selectbox(key="lat_import_preset").set_value("memory").run()
    at.button(key="lat_import_run").click().run()
    assert not at.exception, at.exception
    assert db.info("notes").params == preset_params("memory")
    assert "uses the **memory** preset (half-life at E = 1: 7 days)" in texts(at.success)


# ------------------------------------------------------------------------- fading soon
def test_fading_list_soonest_first_with_the_count(db, seed_demo):
    at = app_as("viewer", LATTICE)
    table = next(d.value for d in at.dataframe if "fades in" in d.value.columns)
    assert list(table.columns) == ["title", "coherence now", "half-life", "fades in", "id"]
    assert len(table) == 50
    assert "**168** gem(s) fall below coherence 0.1 within 7 days; the 50 soonest are listed." in texts(at.markdown)
    assert (table["coherence now"] > 0.1).all()
    at.selectbox(key="lat_fading_span").set_value("1 day").run()
    assert not at.exception, at.exception
    first = next(d.value for d in at.dataframe if "fades in" in d.value.columns).iloc[0]
    assert first["fades in"].endswith(("min", "h", "s"))
    assert first["half-life"].endswith(("min", "h", "s", "days"))


def test_fading_list_empty_state_says_why(db):
    db.update_params("demo", preset_params("archive", db.info("demo").params), SYSTEM)
    at = app_as("viewer", LATTICE)
    assert not at.exception, at.exception
    assert not [d for d in at.dataframe if "fades in" in d.value.columns]
    assert "No gem fades below 0.1 within 7 days: Decay scale λ is 0 (no decay, preset archive)." in texts(at.info)


def test_fading_list_empty_when_everything_has_faded(db, seed_demo):
    db.advance("demo", 24 * 30.0, SYSTEM)  # a month at 42 min half-lives
    at = app_as("viewer", LATTICE)
    assert "No gem fades below 0.1 within 7 days: all 168 gems are already below it" in texts(at.info)


# --------------------------------------------------------------------------- demo reset
def test_reset_the_demo_with_its_confirm(db):
    from core.service import load_demo_records
    shipped = db.info("demo").params
    db.update_params("demo", LatticeParams(), SYSTEM)  # the seed's decay: 48 hours fade everything
    db.advance("demo", 48.0, SYSTEM)
    at = app_as("researcher", LATTICE)
    assert dict((m.label, m.value) for m in at.sidebar.get("metric"))["Lattice clock"] == "t = 48 hours"
    assert "all 168 gems are already below it" in texts(at.info)
    assert at.button(key="lat_demo_reset").disabled  # not before the confirm
    at.checkbox(key="lat_demo_reset_sure").check().run()
    at.button(key="lat_demo_reset").click().run()
    assert not at.exception, at.exception
    assert "The demo lattice was reset" in texts(at.success)
    info = db.info("demo")
    assert info.t == 0.0 and info.params == shipped
    gems, _ = load_demo_records()
    state = db.load("demo").lattice
    assert state.coherence.tolist() == pytest.approx(gems["coherence"].tolist())
    # the page shows the fresh demo, not a view kept from before
    assert dict((m.label, m.value) for m in at.sidebar.get("metric"))["Lattice clock"] == "t = 0 hours"
    assert at.session_state["params"] == shipped
    assert "already below it" not in texts(at.info)
    assert not at.checkbox(key="lat_demo_reset_sure").value
    audit = db.audit_log(action="demo.reset")
    assert len(audit) == 1 and "researcher" in str(audit.iloc[0].to_dict())  # who asked


def test_no_reset_on_another_lattice(db):
    db.create_lattice("other", SYSTEM)
    db.add_gem("other", SYSTEM, "a gem of another lattice")
    at = app_as("admin", LATTICE)
    at.sidebar.selectbox(key="lattice_name").set_value("other").run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.key == "lat_demo_reset"]
    assert [b for b in at.button if b.key == "lat_preset_apply"]


# --------------------------------------------------------------------------- gem detail
def open_gem(at, gem_id: str):
    at.session_state["lat_open_id"] = gem_id
    at.run()
    assert not at.exception, at.exception
    return at


def gem_metric(at, label: str) -> str:
    return [str(m.value) for m in at.main.get("metric") if m.label == label][-1]


def test_gem_card_shows_its_half_life_and_times(db, seed_demo):
    at = open_gem(app_as("researcher", LATTICE), "wave-decoherence")
    energy = db.get_gem("demo", "wave-decoherence")["energy"]
    assert gem_metric(at, "Half-life") == LatticeParams().half_life_text(energy)  # E ln2 / λ
    line = next(m for m in texts(at.markdown).split(" | ") if m.startswith("**Created:**"))
    assert line.startswith("**Created:** t = 0 hours (20") and " UTC) · **Last observed:** never" in line
    assert "**Observations:** 0 times" in line
    db.advance("demo", 2.0, SYSTEM)
    db.observe("demo", ["wave-decoherence"], SYSTEM)
    at.run()
    line = next(m for m in texts(at.markdown).split(" | ") if m.startswith("**Created:**"))
    assert "**Last observed:** t = 2 hours (20" in line and "**Observations:** 1 time " in line
    assert line.startswith("**Created:** t = 0 hours, 2 h ago (20")


def test_gem_times_from_before_the_upgrade_are_unknown(db):
    from sqlalchemy import update

    from core.store.tables import GEM_STATES, GEMS
    with db.engine.begin() as conn:  # as migration 0005 leaves a gem it cannot date
        pk = conn.execute(GEMS.select().where(GEMS.c.gem_id == "wave-decoherence")).mappings().one()["pk"]
        conn.execute(update(GEM_STATES).where(GEM_STATES.c.gem_pk == pk).values(created_t=None))
    at = open_gem(app_as("viewer", LATTICE), "wave-decoherence")
    line = next(m for m in texts(at.markdown).split(" | ") if m.startswith("**Created:**"))
    assert "(lattice time unknown (before the upgrade))" in line
    assert "**Last observed:** never" in line


def test_times_lines_say_unknown_for_every_missing_part():
    import pandas as pd

    from ui.gem_times import UNKNOWN, times_lines
    row = {"created_t": float("nan"), "created_at": pd.NaT, "last_observed_t": 3.5, "observed_at": pd.NaT,
           "observations": 0}
    lines = times_lines(row, "day")
    assert lines["Created"] == UNKNOWN
    assert lines["Last observed"] == f"t = 3.5 days (UTC {UNKNOWN})"
    assert lines["Observations"].startswith("0 times")


def test_a_history_imported_with_times_shows_them_on_the_gem_card(db):
    rows = (b'{"id": "spring", "content": "said in spring", "created_at": "2026-03-01T10:00:00Z"}\n'
            b'{"id": "recent", "content": "said a week before", "created_at": "2026-11-24T10:00:00+00:00"}\n')
    at = app_as("researcher", LATTICE)
    at.file_uploader(key="lat_import_files").set_value([("history.jsonl", rows, "application/jsonl")])
    at.text_input(key="lat_import_target").input("history").run()
    at.selectbox(key="lat_import_preset").set_value("memory").run()
    at.button(key="lat_import_run").click().run()
    assert not at.exception, at.exception
    at.sidebar.selectbox(key="lattice_name").set_value("history").run()
    open_gem(at, "spring")
    line = next(m for m in texts(at.markdown).split(" | ") if m.startswith("**Created:**"))
    # the history's first instant, 38 weeks before its last (the lattice clock)
    assert line.startswith("**Created:** t = 0 hours, 38 weeks ago (2026-03-01 10:00 UTC)")
    assert gem_metric(at, "Half-life") == "7 days"
    assert float(gem_metric(at, "Coherence")) < 0.01  # aged by its own nine months
    # one gem already faded, the other (half-way after one half-life) not within 7 days
    assert "No gem fades below 0.1 within 7 days (half-life at E = 1: 7 days); 1 gem(s) are already below it." \
        in texts(at.info)


# ------------------------------------------------------------------------- the helpers
def test_a_new_time_unit_moves_the_half_life_box(db, seed_demo):
    at = app_as("researcher", PARAMETERS)
    at.selectbox(key="param_time_unit").set_value("day").run()
    assert not at.exception, at.exception
    assert control_label(at, "param_lambda_") == "Decay scale λ (1/day) · half-life 17 h"  # λ = 1 per day now
    assert at.text_input(key="param_half_life").value == "17 h"
    assert control_label(at, "param_dt") == "Time step dt (days)"


def test_errors_name_parameters_by_label():
    from core.errors import ValidationError
    from ui.controls import human_error
    assert human_error(ValidationError("lambda_", "got 200.0; allowed range [0.0, 100.0]")) == \
        "Decay scale λ: got 200.0; allowed range [0.0, 100.0]"
    assert human_error(ValidationError("within", "got -1")) == "within: got -1"  # not a parameter: as is


def test_changed_from_preset_counts_what_a_preset_leaves_alone():
    from ui.context import changed_from_preset
    memory = preset_params("memory")
    assert changed_from_preset(memory) == []
    assert changed_from_preset(memory.replace(K=0.5, energy_cap=8.0)) == ["K", "energy_cap"]
    assert changed_from_preset(preset_params("memory", time_unit="day")) == []  # the same week, in days


def test_preset_differences_are_said_by_label():
    from ui.presets import differences
    lines = differences(LatticeParams(), preset_params("archive"))
    assert "Decay scale λ: 1 → 0 1/hour" in lines and "Uncertainty growth: 0.1 → 0 1/hour" in lines
    assert not any("lambda_" in line for line in lines)


def test_the_gem_preview_spans_two_of_its_half_lives(db, seed_demo):
    at = open_gem(app_as("viewer", LATTICE), "wave-decoherence")
    title = next(t for t in (c.proto.spec for c in at.get("plotly_chart")) if "This gem over the next" in t)
    assert "This gem over the next 2 days" in title  # seed: a half-life of hours, so the 48 h minimum
    db.update_params("demo", preset_params("memory", db.info("demo").params), SYSTEM)
    at = open_gem(app_as("viewer", LATTICE), "wave-decoherence")
    energy = db.get_gem("demo", "wave-decoherence")["energy"]
    expected = preset_params("memory").half_life_text(2 * energy)  # 2 E ln2 / λ
    assert f"This gem over the next {expected}" in next(
        c.proto.spec for c in at.get("plotly_chart") if "This gem over the next" in c.proto.spec)
