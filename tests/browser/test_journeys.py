"""Real-browser journeys through the demo workbench: log in, explore, simulate, tune, and
time-aware memory (half-lives, presets, fading, the demo reset).

Long file: every journey shares the navigation helpers at the top and one server session;
splitting would only copy them.

Screenshots go to test-artifacts/screenshots/ (journey-step.png).
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def login(page, base: str, username: str = "researcher", password: str = "demo") -> None:
    page.goto(base)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    # generous: the first run of a fresh server imports the whole engine (slow on a busy machine)
    page.get_by_role("heading", name="Evolution").wait_for(timeout=90_000)
    wait_for_charts(page, 4)


def wait_for_charts(page, count: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {count}",
                           timeout=30_000)


def chart_titles(page) -> list[str]:
    return [t or "" for t in page.locator(".js-plotly-plot .gtitle").all_text_contents()]


def wait_for_chart_titled(page, *prefixes: str) -> None:
    """Until a plotly chart title starts with each prefix (charts of the last page may linger)."""
    for prefix in prefixes:
        page.wait_for_function(
            "p => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
            ".some(e => (e.textContent || '').startsWith(p))", arg=prefix, timeout=30_000)


def go_to(page, link: str, heading: str, *chart_titles: str) -> None:
    page.get_by_role("link", name=link).click()
    page.get_by_role("heading", name=heading).wait_for()
    wait_for_chart_titled(page, *chart_titles)


def sidebar_text(page) -> str:
    return page.locator("[data-testid='stSidebar']").inner_text()


def test_log_in(page, app_server, shots):
    page.goto(app_server)
    page.get_by_label("Username").wait_for()
    assert "Demo mode" in page.content()
    shots(page, "login-1-form")
    page.get_by_label("Username").fill("researcher")
    page.get_by_label("Password", exact=True).fill("wrong")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Username or password is incorrect.").wait_for()
    page.get_by_label("Password", exact=True).fill("demo")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Evolution").wait_for()
    wait_for_charts(page, 4)
    assert "Signed in as researcher" in sidebar_text(page)
    shots(page, "login-2-evolution")
    page.wait_for_timeout(500)
    page.reload()  # a new session: the signed cookie logs us in again
    page.get_by_role("heading", name="Evolution").wait_for()
    assert "Signed in as researcher" in sidebar_text(page)
    page.get_by_role("button", name="Log out").click()
    # the notice, or already the form (the cookie component may rerun the page at once)
    page.get_by_text("You are logged out.").or_(page.get_by_label("Username")).first.wait_for()
    page.wait_for_timeout(500)
    page.reload()  # the cookie is gone: the login form again
    page.get_by_label("Username").wait_for()
    shots(page, "login-3-logged-out")


def test_explore_every_page(page, app_server, shots):
    login(page, app_server, "viewer")
    go_to(page, "Interference", "Interference", "Interference I_ij", "Entanglement network", "Order parameter")
    titles = chart_titles(page)
    assert any(t.startswith("Interference I_ij") for t in titles)
    assert any(t.startswith("Entanglement network") for t in titles)
    page.get_by_text("Most constructive").wait_for()
    shots(page, "explore-1-interference")
    go_to(page, "Parameters & experiments", "Parameters & experiments", "Preview")
    shots(page, "explore-2-parameters")
    go_to(page, "Evolution", "Evolution", "Coherence over time", "Phasors at t", "Uncertainty", "Order parameter")
    shots(page, "explore-3-evolution")
    page.get_by_role("link", name="Lattice").click()
    page.get_by_role("heading", name="Lattice", exact=True).wait_for()
    page.get_by_text("168 gem(s) match").wait_for()
    shots(page, "explore-4-lattice")
    search = page.get_by_role("textbox", name="Search title and content")
    search.fill("decoherence")
    search.press("Enter")
    page.get_by_text(re.compile(r"^\d gem\(s\) match")).wait_for()
    page.get_by_role("combobox", name=re.compile("Open a gem")).click()
    page.get_by_role("option", name=re.compile("^wave-decoherence")).click()
    page.get_by_text("`wave-decoherence`").or_(page.get_by_text(re.compile(r"^wave-decoherence · tags"))).first.wait_for()
    assert "read-only" in page.content()  # a viewer: no edit form
    shots(page, "explore-5-gem")


def phasor_time(page) -> float:
    title = next(t for t in chart_titles(page) if t.startswith("Phasors at t"))
    return float(re.search(r"t = ([0-9.]+)", title).group(1))


def only_button(page, name: str):
    """The one button called ``name``, once a rerun has replaced any stale copy of it."""
    button = page.get_by_role("button", name=name)
    expect(button).to_have_count(1, timeout=30_000)
    return button


def test_simulate_play_and_advance(page, app_server, shots):
    login(page, app_server, "researcher")
    start = phasor_time(page)  # the lattice clock (another journey may have advanced it)
    only_button(page, "Play").click()
    page.wait_for_function(
        "[...document.querySelectorAll('.js-plotly-plot .gtitle')].some(e => {"
        "  const m = /^Phasors at t = ([0-9.]+)/.exec(e.textContent);"
        f"  return m && parseFloat(m[1]) > {start}; }})", timeout=20_000)
    shots(page, "simulate-1-playing")
    only_button(page, "Pause").click()
    only_button(page, "Play")
    assert phasor_time(page) > start
    page.get_by_role("button", name="Advance lattice").click()
    page.get_by_text(re.compile(r"Lattice clock advanced by 1 to t = \d")).wait_for()
    assert "memory only" not in page.content()  # the database source: the change is saved
    assert re.search(r"t = [1-9][0-9.]* hours?", sidebar_text(page))  # "t = 1 hour" (issue 11, item 22)
    wait_for_charts(page, 4)
    shots(page, "simulate-2-advanced")


def test_viewer_cannot_advance(page, app_server, shots):
    login(page, app_server, "viewer")
    # issue 11, item 22: the button a viewer may not use is disabled (its help says why), not a click that fails
    assert page.get_by_role("button", name="Advance lattice").is_disabled()
    shots(page, "simulate-3-viewer-refused")


def test_play_to_the_horizon_at_the_chosen_speed(page, app_server, shots):
    """Issue 11, item 19: a speed control; the last frame is the horizon; no label blob on the phasors."""
    login(page, app_server, "researcher")
    start = phasor_time(page)
    page.get_by_text("Simulation table (one row per time point)").first.click()
    page.get_by_role("button", name=re.compile("^Per-gem trajectories")).wait_for()
    slider = page.get_by_role("slider", name="Speed")
    slider.focus()
    slider.press("Home")  # the fastest: 10 s for the whole horizon
    page.locator("[data-testid='stSliderThumbValue']").filter(has_text="10 s").wait_for()
    only_button(page, "Play").click()  # once the rerun has settled
    only_button(page, "Pause")
    page.get_by_role("button", name="Play").wait_for(timeout=60_000)  # back to Play at the end
    page.wait_for_timeout(1500)
    assert phasor_time(page) == pytest.approx(start + 24.0, abs=1e-6)
    time_slider = page.locator("[data-testid='stSlider']").filter(has_text="Time (hours)")
    shown = time_slider.locator("[data-testid='stSliderThumbValue']").inner_text()
    assert float(shown) == pytest.approx(start + 24.0, abs=0.005)  # the slider and the charts agree
    shots(page, "evolution-1-played-to-the-horizon")


def test_research_links_and_names(page, app_server, shots):
    """Issue 11, items 20-22 in the browser: names on the heatmap, the strongest links, a row
    opens a gem with its links and its trajectory, a citation opens the gem, Admin says admins only."""
    login(page, app_server, "researcher")
    go_to(page, "Interference", "Interference", "Interference I_ij", "Entanglement network")
    page.get_by_text("Choose gems").click()
    page.wait_for_timeout(1500)
    wait_for_chart_titled(page, "Interference I_ij")
    box = page.get_by_role("spinbutton", name=re.compile(r"^Look ahead"))
    box.fill("48")
    box.press("Enter")
    wait_for_chart_titled(page, "Entanglement network")
    page.wait_for_timeout(1500)
    shots(page, "interference-1-names-and-network")
    page.get_by_role("link", name="Lattice").click()
    page.get_by_role("heading", name="Lattice", exact=True).wait_for()
    page.get_by_text("168 gem(s) match").wait_for()
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.scroll_into_view_if_needed()
    grid.hover(position={"x": 14, "y": 35 + 17})
    grid.click(position={"x": 14, "y": 35 + 17})  # the first row's selection cell
    page.wait_for_timeout(1000)
    shots(page, "lattice-0-row-clicked")
    page.get_by_text(re.compile(r"^Linked gems")).first.wait_for()
    wait_for_chart_titled(page, "This gem over the next")
    shots(page, "lattice-1-row-opens-a-gem")
    page.get_by_role("link", name="Reflection").click()
    page.get_by_role("heading", name="Reflection", exact=True).wait_for()
    box = page.get_by_placeholder("Ask the lattice a question…")
    box.fill("What is decoherence?")
    box.press("Enter")
    link = page.locator("a[href*='lattice?gem=']").first
    link.wait_for(timeout=30_000)
    gem = re.search(r"gem=([^&]+)", link.get_attribute("href")).group(1)
    page.goto(app_server.rstrip("/") + "/lattice?gem=" + gem)
    page.get_by_role("heading", name="Lattice", exact=True).wait_for(timeout=30_000)
    page.get_by_text(f"`{gem}`").or_(page.get_by_text(re.compile(rf"^{re.escape(gem)} · tags"))).first.wait_for()
    shots(page, "reflect-5-citation-opens-the-gem")
    page.goto(app_server.rstrip("/") + "/admin")
    page.get_by_text(re.compile("The Admin page is for admins only")).wait_for(timeout=30_000)
    shots(page, "admin-1-researcher-refused")


def preview_metric(page) -> str:
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Mean coherence at").first
    return metric.locator("[data-testid='stMetricValue']").inner_text()


def test_tune_a_parameter(page, app_server, shots):
    login(page, app_server, "researcher")
    go_to(page, "Parameters & experiments", "Parameters & experiments", "Preview")
    before = preview_metric(page)
    page.get_by_role("button", name="Save this run").click()
    wait_for_chart_titled(page, "Saved runs compared (1)")
    box = page.get_by_role("spinbutton", name=re.compile(r"^Decay scale λ \(1\/hour\) · half-life "))
    box.fill("0.2")
    box.press("Enter")
    page.wait_for_function(
        "document.querySelector('[data-testid=\"stSidebar\"]').innerText.includes('1 changed')", timeout=20_000)
    page.wait_for_function(
        "b => [...document.querySelectorAll('[data-testid=\"stMetric\"]')].some("
        "e => e.innerText.includes('Mean coherence at') && !e.innerText.includes(b))", arg=before, timeout=20_000)
    assert preview_metric(page) != before
    page.get_by_role("button", name="Save this run").click()
    wait_for_chart_titled(page, "Saved runs compared (2)")
    shots(page, "tune-1-lambda")
    page.get_by_role("tab", name="Sweep").click()
    page.get_by_role("button", name="Run sweep").click()
    page.get_by_text(re.compile(r"Done: \d+ runs")).wait_for()
    wait_for_chart_titled(page, "Sweep of")
    shots(page, "tune-2-sweep")
    page.get_by_role("tab", name="Fit decay").click()
    rows = "t,coherence,gem\n" + "\n".join(f"{t},{a * 2.718281828 ** (-t / 4):.5f},{g}"
                                           for g, a in (("a", 0.9), ("b", 0.6)) for t in range(12))
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        files=[{"name": "observations.csv", "mimeType": "text/csv", "buffer": rows.encode()}])
    wait_for_chart_titled(page, "Decay fit:")
    fit_title = next(t for t in chart_titles(page) if t.startswith("Decay fit:"))
    assert re.search(r"τ = 4\b|λ = 0\.25\b", fit_title), fit_title  # the data's τ = 4 (λ = 1/4 at E = 1)
    shots(page, "tune-3-fit")


def test_reflect(page, app_server, shots):
    login(page, app_server, "researcher")
    page.get_by_role("link", name="Reflection").click()
    page.get_by_role("heading", name="Reflection", exact=True).wait_for()
    box = page.get_by_placeholder("Ask the lattice a question…")
    box.fill("What is decoherence?")
    box.press("Enter")
    page.get_by_text("[wave-decoherence]").first.wait_for(timeout=30_000)  # the answer cites its gems
    page.get_by_role("tab", name=re.compile(r"^Ranked gems")).wait_for()
    wait_for_chart_titled(page, "Score of each ranked gem")
    shots(page, "reflect-1-answer")
    page.get_by_role("tab", name=re.compile(r"^Provider trace")).click()
    page.get_by_text("extractive-v2").first.wait_for()
    shots(page, "reflect-2-trace")
    page.get_by_role("tab", name=re.compile(r"^State change")).click()
    page.get_by_text(re.compile(r"entanglement\(s\) created or strengthened")).wait_for()
    shots(page, "reflect-3-state-change")
    page.get_by_role("link", name="Cache & metrics").click()
    page.get_by_role("heading", name="Cache & metrics").wait_for()
    wait_for_chart_titled(page, "Resonance cache", "LLM providers", "Reflection latency", "Lattice demo")
    shots(page, "reflect-4-metrics")


def test_back_up(page, app_server, shots, tmp_path):
    login(page, app_server, "admin")
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("heading", name="Admin", exact=True).wait_for()
    page.get_by_role("button", name="Create backup").click()
    page.get_by_text(re.compile(r"Snapshot of demo ready: \d+ gems")).wait_for()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download snapshot").click()
    download = info.value
    assert re.fullmatch(r"demo-\d{8}T\d{6}Z-v\d+\.zip", download.suggested_filename)
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    import zipfile
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None and len(zf.namelist()) >= 2
    shots(page, "backup-1-admin")
    page.get_by_role("button", name="Back up the whole database").click()
    page.get_by_text(re.compile(r"Database copy ready: \d+ lattice")).wait_for()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download database").click()
    db_copy = tmp_path / info.value.suggested_filename
    info.value.save_as(db_copy)
    import sqlite3
    with sqlite3.connect(db_copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM lattices").fetchone()[0] >= 1
    shots(page, "backup-3-database")
    page.get_by_role("tab", name="Transaction log").click()
    page.get_by_text(re.compile(r"entr(y|ies) of lattice demo")).wait_for()
    shots(page, "backup-2-log")


def test_viewer_sees_no_admin_page(page, app_server):
    login(page, app_server, "viewer")
    assert page.get_by_role("link", name="Admin").count() == 0
    assert page.get_by_role("link", name="Lattice").count() == 1


def test_edit_and_import_gems(page, app_server, shots):
    login(page, app_server, "researcher")
    page.get_by_role("link", name="Lattice").click()
    page.get_by_role("heading", name="Lattice", exact=True).wait_for()
    search = page.get_by_role("textbox", name="Search title and content")
    search.fill("Kuramoto model")
    search.press("Enter")
    page.get_by_text(re.compile(r"^\d+ gem\(s\) match")).wait_for()
    page.get_by_role("combobox", name=re.compile("Open a gem")).click()
    page.get_by_role("option", name=re.compile("^sync-kuramoto-model")).click()
    title = page.get_by_role("textbox", name="Title", exact=True)
    title.fill("The Kuramoto model (edited in the browser)")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved title of gem 'sync-kuramoto-model'.").wait_for()
    page.get_by_role("heading", name="The Kuramoto model (edited in the browser)").wait_for()
    shots(page, "edit-1-gem-saved")
    page.get_by_role("tab", name="Import").click()
    rows = ('{"id": "b-1", "content": "A good browser gem."}\n'
            '{"id": "b-2", "content": "Bad coherence.", "coherence": 3}\n'
            '{"title": "no content"}\n')
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        files=[{"name": "browser.jsonl", "mimeType": "application/jsonl", "buffer": rows.encode()}])
    page.get_by_text("browser.jsonl").wait_for()
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text(re.compile("Import refused, nothing was written")).wait_for()
    shots(page, "edit-2-import-refused")
    page.get_by_text("Skip bad rows (import the rest)").click()
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text(re.compile(r"2 bad row\(s\) were skipped")).wait_for()
    shots(page, "edit-3-import-skipped")


def lattice_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_for_timeout(500)


def apply_lattice_preset(page, preset: str) -> None:
    """Preset & reset tab: choose ``preset``, tick the confirm, apply, wait for the message."""
    page.get_by_role("combobox", name=re.compile("Change the preset to")).click()
    page.get_by_role("option", name=preset, exact=True).click()
    page.get_by_text("Applying it changes:").wait_for()
    apply = page.get_by_role("button", name="Apply the preset")
    expect(apply).to_be_disabled()  # not before the confirm
    page.get_by_text(re.compile(r"^Yes, change how the gems of demo decay")).click()
    expect(apply).to_be_enabled()
    apply.click()
    page.get_by_text(re.compile(rf"now uses the {preset} preset")).wait_for()


def test_time_aware_memory(page, app_server, shots):
    """Issue 13 in the browser: a half-life typed as text, the lattice's preset changed with its
    confirm, the fading-soon list, the demo reset with its confirm."""
    login(page, app_server, "researcher")
    go_to(page, "Parameters & experiments", "Parameters & experiments", "Preview")
    box = page.get_by_role("textbox", name="Half-life at E = 1")
    box.fill("a fortnight")
    box.press("Enter")
    page.get_by_text(re.compile(r"^Half-life at E = 1: got 'a fortnight'")).wait_for()
    box = page.get_by_role("textbox", name="Half-life at E = 1")
    box.fill("36h")
    box.press("Enter")
    expect(page.get_by_role("spinbutton", name=re.compile(r"^Decay scale λ \(1\/hour\) · half-life 1.5 days$"))) \
        .to_have_count(1, timeout=20_000)
    page.wait_for_function("document.querySelector('[data-testid=\"stSidebar\"]').innerText.includes('1.5 days')",
                           timeout=20_000)
    shots(page, "memory-1-half-life")

    page.get_by_role("link", name="Lattice").click()
    page.get_by_role("heading", name="Lattice", exact=True).wait_for()
    lattice_tab(page, "Preset & reset")
    apply_lattice_preset(page, "seed")  # the seed's 42 min half-lives: the demo fades within hours
    page.get_by_text(re.compile(r"^Preset: seed: the seed.s exact dynamics")).wait_for()
    lattice_tab(page, "Fading soon")
    page.get_by_text(re.compile(r"gem\(s\) fall below coherence 0.1 within 7 days")).wait_for()
    lattice_tab(page, "Preset & reset")
    apply_lattice_preset(page, "memory")
    assert "7 days" in sidebar_text(page)
    shots(page, "memory-2-preset-applied")

    lattice_tab(page, "Fading soon")
    page.get_by_role("combobox", name=re.compile("Fades within")).click()
    page.get_by_role("option", name="30 days").click()
    page.get_by_text(re.compile(r"within 30 days")).first.wait_for()
    shots(page, "memory-3-fading-soon")

    page.get_by_role("link", name="Evolution").click()  # age the demo, then reset it
    page.get_by_role("heading", name="Evolution").wait_for()
    only_button(page, "Advance lattice").click()
    page.wait_for_function("!document.querySelector('[data-testid=\"stSidebar\"]').innerText.includes('t = 0 ')",
                           timeout=30_000)
    page.get_by_role("link", name="Lattice").click()
    page.get_by_role("heading", name="Lattice", exact=True).wait_for()
    lattice_tab(page, "Preset & reset")
    reset = page.get_by_role("button", name="Reset the demo")
    expect(reset).to_be_disabled()
    page.get_by_text("Yes, throw away every change to the demo lattice").click()
    expect(reset).to_be_enabled()
    reset.click()
    page.get_by_text(re.compile("The demo lattice was reset")).wait_for()
    page.wait_for_function("document.querySelector('[data-testid=\"stSidebar\"]').innerText.includes('t = 0 ')",
                           timeout=30_000)
    shots(page, "memory-4-demo-reset")
    lattice_tab(page, "Browse & edit")
    page.get_by_role("combobox", name=re.compile("Open a gem")).click()
    page.get_by_role("option").first.click()
    page.get_by_text(re.compile(r"^Created: t = 0 hours \(20\d\d-")).wait_for()
    page.get_by_text(re.compile(r"Observations: 0 times")).first.wait_for()
    shots(page, "memory-5-gem-times")
