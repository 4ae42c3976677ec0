"""Real-browser journey through the Sweep tab's retrieval outcomes: the shipped question set's
lattice, a half-life sweep (metric, band, best point), a two-parameter heatmap, the optimiser
and "Use these parameters".

Screenshots go to test-artifacts/screenshots/ (sweep-outcomes-*.png).
"""
from __future__ import annotations

import re

import pytest

from tests.browser.test_journeys import go_to, login, wait_for_chart_titled

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def retrieval_tab(page) -> None:
    page.get_by_role("tab", name="Sweep").click()
    page.get_by_text("Retrieval quality on questions").click()
    page.get_by_text("Question set").first.wait_for()


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox/multiselect labelled ``label``."""
    page.locator("[data-testid='stSelectbox']:visible, [data-testid='stMultiSelect']:visible").filter(
        has_text=label).first.locator("input").click()  # the Tune tab has a hidden "Scoring rule" too
    page.get_by_role("option", name=option).first.click()
    page.keyboard.press("Escape")  # close the drop-down: it covers the inputs below


def test_retrieval_sweeps_heatmap_and_search(page, app_server, shots):
    login(page, app_server, "researcher")
    go_to(page, "Parameters & experiments", "Parameters & experiments", "Preview")
    retrieval_tab(page)
    page.get_by_text("does not hold this set's evidence").wait_for()
    shots(page, "sweep-outcomes-1-wrong-lattice")
    importer = page.get_by_role("button", name=re.compile("Import the MemoryBank gems"))
    if importer.count():  # the Evaluate journey may have imported it already
        importer.click()
    page.get_by_role("button", name="Switch to lattice 'memorybank'").click(timeout=120_000)
    page.get_by_role("heading", name="Parameters & experiments").wait_for()
    if not page.get_by_role("button", name="Run retrieval sweep").is_visible():
        retrieval_tab(page)
    run = page.get_by_role("button", name="Run retrieval sweep")
    run.wait_for(timeout=60_000)
    run.click()
    wait_for_chart_titled(page, "MRR against Half-life at energy 1")
    page.get_by_text(re.compile(r"Best MRR: 0\.\d{3}")).first.wait_for()
    shots(page, "sweep-outcomes-2-half-life")

    choose(page, "Scoring rule", "floor s·(φ + (1−φ)·c^α)")
    choose(page, "Parameters to sweep (one or two)", "Coherence floor φ")
    page.locator("input[aria-label='Coherence floor φ: points']").wait_for()
    for label, n in (("Half-life at energy 1: points", "8"), ("Coherence floor φ: points", "6")):
        box = page.locator(f"input[aria-label='{label}']")
        box.fill(n)
        box.press("Enter")
    page.get_by_text("48 grid points").wait_for()
    page.get_by_role("button", name="Run retrieval sweep").click()
    wait_for_chart_titled(page, "MRR over Half-life at energy 1 and Coherence floor φ")
    page.locator(".js-plotly-plot").filter(has_text="best cell").first.scroll_into_view_if_needed()
    shots(page, "sweep-outcomes-3-heatmap")

    trials = page.get_by_role("spinbutton", name="Trials")
    trials.fill("16")
    trials.press("Enter")
    page.get_by_role("button", name="Run the search").click()
    wait_for_chart_titled(page, "Search: MRR of each trial")
    page.locator(".js-plotly-plot").filter(has_text="Search: MRR of each trial").scroll_into_view_if_needed()
    shots(page, "sweep-outcomes-4-search")
    use = page.get_by_role("button", name="Use these parameters")
    use.scroll_into_view_if_needed()
    use.click()
    page.get_by_text("This session now uses").first.wait_for()
    page.get_by_role("tab", name="Tune").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=\"stSidebar\"]').innerText.includes('changed')", timeout=20_000)
    shots(page, "sweep-outcomes-5-used")
