"""Stage 2 pages on the store: Lattice, Reflection, Cache & metrics, Admin, saved runs.

Long file: one AppTest per page journey, all on the same store fixtures.

Each test has its own SQLite database (tests/ui/conftest.py: fresh_database); the
workbench loads the demo lattice into it on first use.
"""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

from core.access import SYSTEM, Actor, PermissionDenied
from tests.ui.helpers import ROOT, TIMEOUT, app_as, chart_json, charts, texts

LATTICE = "pages/1_Lattice.py"
REFLECTION = "pages/4_Reflection.py"
PARAMETERS = "pages/5_Parameters.py"
METRICS = "pages/6_Metrics.py"
ADMIN = "pages/7_Admin.py"


def titles_of(at) -> list[str]:
    return [chart_json(c)["layout"]["title"]["text"] for c in charts(at)]


def metric(at, label: str) -> str:
    return next(str(m.value) for m in at.main.get("metric") if m.label == label)


def frames_with(at, column: str) -> list:
    """The st.dataframe values having ``column`` (read-only dataframes carry no key in AppTest)."""
    return [d.value for d in at.dataframe if column in d.value.columns]


def ask(at, question: str):
    at.chat_input(key="refl_input").set_value(question).run()
    assert not at.exception, at.exception
    return at


# ------------------------------------------------------------------ lattice
def test_lattice_headline_table_search_and_open_a_gem():
    at = app_as("viewer", LATTICE)
    assert not at.exception, at.exception
    assert metric(at, "Gems") == "168" and metric(at, "Last reflection") == "none yet"
    assert len(at.dataframe[0].value) == 25 and "168 gem(s) match" in texts(at.caption)
    at.text_input(key="lat_text").input("decoherence").run()
    assert not at.exception
    found = at.dataframe[0].value
    assert 0 < len(found) < 25 and "wave-decoherence" in found["id"].tolist()
    at.selectbox(key="lat_open_choice").set_value("wave-decoherence").run()
    assert not at.exception
    assert any("wave-decoherence" in str(c.value) for c in at.caption)
    assert "read-only" in texts(at.info)
    assert "lat_edit_form" not in str(at.main)  # a viewer gets no edit form
    assert not [b for b in at.button if b.key in ("lat_archive", "lat_delete")]


def test_lattice_filters_by_tag_coherence_and_status(db):
    at = app_as("researcher", LATTICE)
    tag = at.selectbox(key="lat_tag").options[1]
    at.selectbox(key="lat_tag").set_value(tag).run()
    df, total = db.list_gems("demo", tag=tag)
    assert f"{total} gem(s) match" in texts(at.caption)
    at.selectbox(key="lat_tag").set_value("(any)")
    at.slider(key="lat_coh").set_value((0.9, 1.0)).run()
    _, total = db.list_gems("demo", coherence_min=0.9)
    assert f"{total} gem(s) match" in texts(at.caption) and (at.dataframe[0].value["coherence"] >= 0.9).all()
    at.selectbox(key="lat_status").set_value("Archived").run()
    assert "0 gem(s) match" in texts(at.caption)


def test_researcher_edits_archives_restores_and_deletes_a_gem(db):
    at = app_as("researcher", LATTICE)
    at.text_input(key="lat_text").input("decoherence").run()
    at.selectbox(key="lat_open_choice").set_value("wave-decoherence").run()
    g = db.get_gem("demo", "wave-decoherence")
    form = f"lat_e_wave-decoherence_{g['version']}_{g['state_version']}"  # the form's keys follow both versions
    at.text_input(key=f"{form}_title").input("Decoherence, edited")
    at.number_input(key=f"{form}_coherence").set_value(0.5)
    at.button(key="lat_save").click().run()
    assert not at.exception, at.exception
    assert "Saved title, coherence of gem 'wave-decoherence'" in texts(at.success)
    gem = db.get_gem("demo", "wave-decoherence")
    assert gem["title"] == "Decoherence, edited" and gem["coherence"] == 0.5
    at.number_input(key=f"lat_e_wave-decoherence_{gem['version']}_{gem['state_version']}_coherence").set_value(1.5)
    at.button(key="lat_save").click().run()
    assert not at.exception and "Not saved" in texts(at.error) and "coherence" in texts(at.error)
    assert db.get_gem("demo", "wave-decoherence")["coherence"] == 0.5  # nothing changed
    at.button(key="lat_archive").click().run()
    assert "Archived gem 'wave-decoherence'" in texts(at.success) and db.get_gem("demo", "wave-decoherence")["archived"]
    assert metric(at, "Gems") == "167"
    at.button(key="lat_archive").click().run()  # now "Restore"
    assert "Restored gem" in texts(at.success) and not db.get_gem("demo", "wave-decoherence")["archived"]
    assert at.button(key="lat_delete").disabled
    at.checkbox(key="lat_delete_sure").check().run()
    at.button(key="lat_delete").click().run()
    assert not at.exception and "Deleted gem 'wave-decoherence'" in texts(at.success)
    assert db.list_gems("demo", text="Decoherence, edited", archived=None)[1] == 0


def test_researcher_adds_a_gem_and_a_bad_one_is_refused(db):
    at = app_as("researcher", LATTICE)
    at.text_area(key="lat_a_content").input("Phase noise broadens spectral lines.")
    at.text_input(key="lat_a_title").input("Phase noise")
    at.text_input(key="lat_a_tags").input("waves, noise")
    at.text_input(key="lat_a_id").input("phase-noise")
    at.button(key="lat_add").click().run()
    assert not at.exception and "Added gem 'phase-noise'" in texts(at.success)
    assert db.get_gem("demo", "phase-noise")["tags"] == ["waves", "noise"]
    at.text_area(key="lat_a_content").input("")
    at.button(key="lat_add").click().run()
    assert not at.exception and "Not added" in texts(at.error) and "content" in texts(at.error)
    assert db.info("demo").gems == 169


def test_viewer_edit_is_refused_by_the_engine(db):
    with pytest.raises(PermissionDenied, match="viewer"):
        db.update_gem("demo", "wave-decoherence", Actor("viewer", "viewer"), title="x")
    at = app_as("viewer", LATTICE)
    assert "Adding gems needs the researcher or admin role." in texts(at.info)
    assert "Importing needs the researcher or admin role." in texts(at.info)


GOOD = {"id": "imp-1", "title": "Imported", "content": "An imported gem about tides.", "tags": ["imported"]}


def _jsonl(*rows) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def test_import_is_all_or_nothing_and_can_skip_bad_rows(db):
    at = app_as("researcher", LATTICE)
    bad = _jsonl(GOOD, {"id": "imp-2", "content": "x", "coherence": 7}, {"title": "no content"})
    at.file_uploader(key="lat_import_files").set_value([("gems.jsonl", bad, "application/jsonl")]).run()
    at.button(key="lat_import_run").click().run()
    assert not at.exception, at.exception
    assert "Import refused, nothing was written" in texts(at.error) and "2 problem(s)" in texts(at.error)
    issues = at.dataframe[-1].value
    assert list(issues.columns) == ["file", "line", "field", "problem"] and issues["line"].tolist() == [2, 3]
    assert set(issues["file"]) == {"gems.jsonl"}
    assert db.info("demo").gems == 168
    at.checkbox(key="lat_import_skip").check()
    at.button(key="lat_import_run").click().run()
    assert not at.exception
    assert "Imported **1** gem(s)" in texts(at.warning) and "2 bad row(s) were skipped" in texts(at.warning)
    assert db.get_gem("demo", "imp-1")["title"] == "Imported" and db.info("demo").gems == 169


def test_import_markdown_files_and_a_zip_into_a_new_lattice(db):
    at = app_as("researcher", LATTICE)
    at.file_uploader(key="lat_import_files").set_value([
        ("a.md", b"# Alpha\n\nAlpha waves are 8-12 Hz.", "text/markdown"),
        ("b.md", b"# Beta\n\nBeta waves are 13-30 Hz.", "text/markdown")]).run()
    at.text_input(key="lat_import_target").input("notes")
    at.button(key="lat_import_run").click().run()
    assert not at.exception and "Imported **2** gem(s)" in texts(at.success) and "**notes**" in texts(at.success)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("docs/c.md", "# Gamma\n\nGamma waves are above 30 Hz.")
        zf.writestr("../evil.md", "nope")
    at.file_uploader(key="lat_import_files").set_value(("docs.zip", buf.getvalue(), "application/zip")).run()
    at.button(key="lat_import_run").click().run()
    assert "unsafe path" in texts(at.error) and db.info("notes").gems == 2
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("docs/c.md", "# Gamma\n\nGamma waves are above 30 Hz.")
    at.file_uploader(key="lat_import_files").set_value(("docs.zip", buf.getvalue(), "application/zip")).run()
    at.button(key="lat_import_run").click().run()
    assert "Imported **1** gem(s)" in texts(at.success) and db.info("notes").gems == 3
    at.file_uploader(key="lat_import_files").set_value(("x.pdf", b"%PDF", "application/pdf"))
    assert not at.exception


def test_export_offers_gems_and_entanglements_downloads():
    at = app_as("viewer", LATTICE)
    at.radio(key="lat_export_fmt").set_value("csv")
    at.button(key="lat_export_run").click().run()
    assert not at.exception
    assert "168 gem(s) and 98 entanglement(s)" in texts(at.success)
    assert {b.key for b in at.get("download_button")} >= {"lat_dl_gems", "lat_dl_edges"}


# --------------------------------------------------------------- reflection
def test_reflection_streams_an_answer_with_ranked_gems_trace_and_state_change(db):
    before = db.get_gem("demo", "wave-decoherence")["coherence"]
    at = app_as("researcher", REFLECTION)
    assert not at.exception
    ask(at, "What is decoherence?")
    md = texts(at.markdown)
    assert "What is decoherence?" in md and "`[wave-decoherence]`" in md  # the answer cites gems
    [ranked], [trace], [state] = frames_with(at, "Score"), frames_with(at, "outcome"), \
        frames_with(at, "coherence after")
    assert {"Similarity s", "Coherence c", "Coherence factor c^α", "Interference", "Score",
            "In prompt"} <= set(ranked.columns)
    assert ranked["rank"].tolist() == sorted(ranked["rank"]) and ranked["In prompt"].any()
    assert trace["provider"].tolist() == ["openai", "anthropic", "offline"]
    assert trace["outcome"].tolist()[-1] == "ok" and "no OPENAI_API_KEY" in trace["detail"].iloc[0]
    assert "wave-decoherence" in state["gem"].tolist()
    assert (state["coherence after"] >= state["coherence before"]).all()
    assert frames_with(at, "new weight")
    assert any(t.startswith("Score of each ranked gem") for t in titles_of(at))
    assert db.get_gem("demo", "wave-decoherence")["coherence"] > before  # observed in the store
    assert len(db.list_reflections("demo")) == 1
    ask(at, "And what about entropy?")  # a second turn; the history keeps the first
    assert "What is decoherence?" in texts(at.markdown) and len(frames_with(at, "Score")) == 2
    at.button(key="refl_reset").click().run()
    assert not at.exception and "What is decoherence?" not in texts(at.markdown)


def test_reflection_nothing_resonates_is_a_clear_warning(db):
    db.update_params("demo", db.info("demo").params.replace(min_score=1.0), SYSTEM)
    at = ask(app_as("researcher", REFLECTION), "What is decoherence?")
    assert "Nothing in lattice 'demo' resonates" in texts(at.warning)
    assert not at.error


def test_reflection_rate_limit_is_a_warning_and_changes_nothing(fresh_database):
    from core.reflection import UserRateLimiter
    from ui.services import _workbench
    at = app_as("researcher", REFLECTION)
    _workbench(fresh_database).rate_limiter = UserRateLimiter(capacity=1, period=3600)
    ask(at, "What is decoherence?")
    ask(at, "What is entropy?")
    assert "Slow down: rate limit reached for user 'researcher'" in texts(at.warning)
    assert not at.exception


def test_viewer_cannot_reflect_the_engine_refuses(db):
    at = app_as("viewer", REFLECTION)
    assert "engine refuses it for viewers" in texts(at.info)
    assert at.chat_input(key="refl_input").proto.disabled  # issue 11, item 22: no input that fails on send
    from ui.services import get_workbench
    with pytest.raises(PermissionDenied, match="not allowed to reflect"):  # and the engine refuses it anyway
        list(get_workbench().reflect("demo", "What is decoherence?", Actor("viewer", "viewer"), "s"))
    assert db.list_reflections("demo").empty


# ------------------------------------------------------------------ metrics
def test_metrics_page_after_a_reflection(fresh_database):
    at = app_as("researcher", REFLECTION)
    ask(at, "What is decoherence?")
    ask(at, "What is entropy?")
    from ui.services import _workbench
    engine, _ = _workbench(fresh_database).engine("demo", Actor("researcher", "researcher"))
    engine.rank("What is entropy?")  # a miss (the reflections changed the lattice version)...
    engine.rank("What is entropy?")  # ...then a hit
    at.switch_page(METRICS).run()
    assert not at.exception, at.exception
    names = titles_of(at)
    assert "Resonance cache: hit ratio over time" in names
    assert "LLM providers: error rate" in names
    assert "Reflection latency (2 reflections)" in names
    assert "Lattice demo: mean coherence and R over time" in names
    assert metric(at, "Cache hit ratio") == "25%" and metric(at, "Hits / misses") == "1 / 3"
    lat = next(chart_json(c) for c in charts(at) if chart_json(c)["layout"]["title"]["text"].startswith("Reflection"))
    assert lat["layout"]["xaxis"]["title"]["text"] == "reflection latency (s)"
    assert any("p95" in a["text"] for a in lat["layout"]["annotations"])
    [table] = frames_with(at, "cooling down")
    assert table["provider"].tolist() == ["openai", "anthropic", "offline"]
    at.radio(key="met_history_x").set_value("log entry").run()
    hist = next(chart_json(c) for c in charts(at) if chart_json(c)["layout"]["title"]["text"].startswith("Lattice"))
    assert hist["layout"]["xaxis"]["title"]["text"] == "log entry (id)"
    at.toggle(key="met_live").set_value(True).run()
    assert not at.exception


# -------------------------------------------------------------------- admin
def test_admin_backup_restore_and_bad_snapshot(db):
    at = app_as("admin", ADMIN)
    at.button(key="adm_backup").click().run()
    assert not at.exception, at.exception
    assert "Snapshot of **demo** ready: 168 gems" in texts(at.success)
    assert "adm_download" in {b.key for b in at.get("download_button")}
    data = at.session_state["adm_snapshot"]["data"]
    db.add_gem("demo", SYSTEM, "A gem added after the backup.", id="late")
    at.file_uploader(key="adm_restore_file").set_value(("broken.zip", b"not a zip", "application/zip")).run()
    assert not at.exception and "Not restored, nothing was changed" in texts(at.error)
    assert "adm_restore_confirm" not in {b.key for b in at.button}  # nothing to confirm
    assert db.info("demo").gems == 169
    at.file_uploader(key="adm_restore_file").set_value(("demo.zip", data, "application/zip")).run()
    at.button(key="adm_restore_confirm").click().run()
    assert not at.exception and "Restored lattice **demo**" in texts(at.success)
    assert db.info("demo").gems == 168


def test_admin_downloads_an_online_copy_of_the_whole_database(db, tmp_path):
    import sqlite3
    at = app_as("admin", ADMIN)
    at.button(key="adm_db_backup").click().run()
    assert not at.exception, at.exception
    assert "Database copy ready: 1 lattice(s)" in texts(at.success)
    assert "adm_db_download" in {b.key for b in at.get("download_button")}
    copy = tmp_path / "copy.db"
    copy.write_bytes(at.session_state["adm_db_copy"]["data"])
    with sqlite3.connect(copy) as conn:  # a complete database: the demo's 168 gems and their states
        assert conn.execute("SELECT count(*) FROM gems").fetchone()[0] == 168
        assert conn.execute("SELECT count(*) FROM gem_states").fetchone()[0] == 168
    assert "db.backup" in set(db.audit_log()["action"])


def test_admin_restore_shows_the_verified_snapshot_before_confirming(db):
    at = app_as("admin", ADMIN)
    at.button(key="adm_backup").click().run()
    snap = at.session_state["adm_snapshot"]
    data, digest, version = snap["data"], snap["info"]["sha256"], snap["info"]["version"]
    db.add_gem("demo", SYSTEM, "A gem added after the backup.", id="late")
    before = db.info("demo").version
    at.file_uploader(key="adm_restore_file").set_value(("demo.zip", data, "application/zip")).run()
    assert not at.exception, at.exception
    # verified, shown, and nothing written yet
    box = texts(at.markdown) + " | " + texts(at.caption)
    assert "Verified" in box and "checksums OK" in box and digest[:16] in box
    shown = {m.label: str(m.value) for m in at.main.get("metric")}
    assert shown["Lattice"] == "demo" and shown["Gems"] == "168" and shown["Version"] == str(version)
    assert shown["Lattice time"].startswith("0 hour")
    assert "replaces** lattice **demo** (now 169 gems" in texts(at.warning)
    assert db.info("demo").version == before and db.info("demo").gems == 169
    confirm = at.button(key="adm_restore_confirm")
    assert confirm.label == "Confirm restore into demo"
    # a restore into a new name says it creates that lattice
    at.text_input(key="adm_restore_name").input("copy").run()
    assert "creates lattice **copy** with these 168 gems" in texts(at.info)
    assert not db.exists("copy")
    at.text_input(key="adm_restore_name").input("").run()
    at.button(key="adm_restore_confirm").click().run()
    assert not at.exception and "Restored lattice **demo**" in texts(at.success)
    assert db.info("demo").gems == 168 and db.info("demo").version > before
    assert "has been restored" in texts(at.info)  # the same file is not offered again
    assert "adm_restore_confirm" not in {b.key for b in at.button}
    log = db.transactions("demo", kinds=["restore"])
    assert len(log) == 1 and log["after"].iloc[0]["sha256"] == digest


def test_admin_transaction_log_filters_and_csv(db):
    db.advance("demo", 1.0, SYSTEM)
    at = app_as("admin", ADMIN)
    [log] = frames_with(at, "gem ids")
    assert {"import", "evolve"} <= set(log["kind"])
    at.multiselect(key="adm_log_kinds").set_value(["evolve"]).run()
    [log] = frames_with(at, "gem ids")
    assert log["kind"].tolist() == ["evolve"]
    assert "Demo mode" in texts(at.info)  # users are fixed in demo mode


def test_admin_page_refuses_a_researcher_opening_it_directly():
    at = AppTest.from_file(str(ROOT / ADMIN), default_timeout=TIMEOUT)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = "researcher"
    at.run()
    assert not at.exception
    assert "not allowed to open the admin page" in texts(at.error)
    assert not [b for b in at.button if b.key.startswith("adm_")] and not at.main.get("tabs")


# --------------------------------------------------------------- saved runs
def test_saved_runs_persist_in_the_store_and_are_compared(db):
    at = app_as("researcher", PARAMETERS)
    at.button(key="par_save_run").click().run()
    at.number_input(key="param_lambda_").set_value(0.5).run()
    at.button(key="par_save_run").click().run()
    assert not at.exception, at.exception
    runs = db.list_runs("demo")
    # named after what differs from the lattice's own parameters, the decay scale with its half-life
    assert runs["name"].tolist() == ["Decay scale λ = 0.5 (half-life 83 min)", "the lattice's own"]
    assert set(runs["actor"]) == {"researcher"}
    assert any(n.startswith("Saved runs compared (2)") for n in titles_of(at))
    table = next(d.value for d in at.dataframe if "run" in d.value.columns)  # one row per run
    assert list(table.columns) == ["run", "Decay scale λ (1/hour)", "half-life (E = 1)"]
    assert table["half-life (E = 1)"].tolist()[-1] == "83 min"
    other = app_as("viewer", PARAMETERS)  # another user, another session: the runs are shared
    assert len(other.multiselect(key="par_compare").options) == 2
    assert other.button(key="par_save_run").disabled and "viewer" in other.button(key="par_save_run").help
    with pytest.raises(PermissionDenied):  # the engine refuses it anyway
        db.save_run("demo", "x", {}, {}, Actor("viewer", "viewer"))
    assert len(db.list_runs("demo")) == 2


def test_admin_adds_a_user_outside_demo_mode(tmp_path, monkeypatch):
    from core.auth import hash_password, load_credentials_file, save_credentials_file
    path = tmp_path / "credentials.yaml"
    save_credentials_file(path, {"usernames": {"root": {"name": "Root", "email": "root@x", "roles": ["admin"],
                                                         "password": hash_password("root-pass-123", rounds=4)}}})
    monkeypatch.delenv("LATTICE_DEMO")
    monkeypatch.setenv("LATTICE_CREDENTIALS", str(path))
    monkeypatch.setenv("LATTICE_COOKIE_KEY", "k" * 48)
    at = app_as("root", ADMIN)
    assert not at.exception, at.exception
    [users] = frames_with(at, "username")
    assert users["username"].tolist() == ["root"] and "password" not in users.columns
    at.text_input(key="adm_u_username").input("Dana")
    at.selectbox(key="adm_u_role").set_value("viewer")
    at.text_input(key="adm_u_pw1").input("dana-pass-123")
    at.text_input(key="adm_u_pw2").input("other")
    at.button(key="adm_u_save").click().run()
    assert "passwords differ" in texts(at.error) and "dana" not in load_credentials_file(path)[0]["usernames"]
    at.text_input(key="adm_u_username").input("Dana")  # the form is cleared on every submit
    at.selectbox(key="adm_u_role").set_value("viewer")
    at.text_input(key="adm_u_pw1").input("dana-pass-123")
    at.text_input(key="adm_u_pw2").input("dana-pass-123")
    at.button(key="adm_u_save").click().run()
    assert not at.exception and "User 'dana' (viewer) saved" in texts(at.success)
    dana = load_credentials_file(path)[0]["usernames"]["dana"]
    assert dana["roles"] == ["viewer"] and dana["password"].startswith("$2")
    [audit] = frames_with(at, "action")  # the Audit log tab shows the change
    assert audit["action"].tolist()[0] == "user.create" and audit["target"].tolist()[0] == "dana"


# ------------------------------------------------------- decay fit from the log
def test_decay_fit_from_the_lattices_own_log(db):
    import numpy as np

    from core.engine import fit_decay
    from core.store import lattice_history
    from tests.ui.helpers import values
    for _ in range(3):
        db.advance("demo", 2.0, SYSTEM)
    db.observe("demo", ["wave-decoherence", "sync-kuramoto-model"], SYSTEM)
    for _ in range(2):
        db.advance("demo", 1.5, SYSTEM)
    at = app_as("researcher", PARAMETERS)
    at.radio(key="fit_source").set_value("This lattice's log").run()
    assert not at.exception, at.exception
    # the points are followed gems' coherence replayed from the log: import + 3 advances, observe + 2
    obs = lattice_history(db, "demo").decay
    assert len(obs) == 24 * 4 + 24 * 3 and obs["entry"].nunique() == 2
    assert f"{len(obs)} points of 48 gem curve(s) in 2 decay stretch(es)" in texts(at.caption)
    spec = chart_json(next(c for c in charts(at) if chart_json(c)["layout"]["title"]["text"].startswith("Decay fit")))
    markers = [tr for tr in spec["data"] if tr["mode"] == "markers"]
    assert len(markers) == 12 and all(" · from entry " in tr["legendgroup"] for tr in markers)  # 12 of 48 drawn
    assert "12 of 48 gems drawn" in spec["layout"]["title"]["subtitle"]["text"]
    first = obs[obs["gem"] == markers[0]["legendgroup"]]
    np.testing.assert_allclose(values(markers[0]["y"]), first["coherence"])
    # the estimate is λ with the gems' energies: the lattice's own λ, to rounding
    fit = fit_decay(obs["t"], obs["coherence"], obs["gem"], energy=obs["energy"])
    lam = db.info("demo").params.lambda_
    assert fit.lambda_ == pytest.approx(lam, rel=1e-9)
    shown = next(m for m in at.main.get("metric") if m.label == "Decay scale λ (1/hour)")
    assert shown.value.startswith(f"{fit.lambda_:.4g} ± ")
    assert metric(at, "half-life at E = 1").startswith("7 days")
    assert spec["layout"]["title"]["text"].startswith(f"Decay fit: λ = {fit.lambda_:.4g}")
    assert at.button(key="fit_log_apply").label == f"Use λ = {lam:.4g} in this session"
    # a new advance is a new version: the fit follows the log
    db.advance("demo", 1.0, SYSTEM)
    at.run()
    assert f"{len(obs) + 24} points of 48 gem curve(s)" in texts(at.caption)


def test_decay_fit_from_a_log_without_advances_explains_why():
    at = app_as("researcher", PARAMETERS)
    at.radio(key="fit_source").set_value("This lattice's log").run()
    assert not at.exception, at.exception
    assert "The log has no decay yet" in texts(at.info)
    assert not [c for c in charts(at) if chart_json(c)["layout"]["title"]["text"].startswith("Decay fit")]
