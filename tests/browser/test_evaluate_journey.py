"""Real-browser journey through the Evaluate page: import the shipped question set's lattice,
compare two parameter sets beside the baselines, open a missed question.

Screenshots go to test-artifacts/screenshots/ (evaluate-step.png).
"""
from __future__ import annotations

import pytest

from tests.browser.test_journeys import chart_titles, go_to, login, wait_for_chart_titled

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_evaluate_two_parameter_sets_and_open_a_missed_question(page, app_server, shots):
    login(page, app_server, "researcher")
    page.get_by_role("link", name="Evaluate").click()
    page.get_by_role("heading", name="Evaluate").wait_for()
    page.get_by_text("does not hold this set's evidence").wait_for()
    shots(page, "evaluate-1-wrong-lattice")
    page.get_by_role("button", name="Import the MemoryBank gems as lattice 'memorybank' (memory preset)").click()
    page.get_by_role("button", name="Imported. Open lattice 'memorybank'").click(timeout=120_000)
    page.get_by_text("press Evaluate").wait_for(timeout=60_000)
    half_b = page.locator("input[aria-label='Half-life at energy 1']").nth(1)  # set B: the seed preset
    half_b.fill("1 day")
    half_b.press("Enter")
    page.wait_for_function("() => [...document.querySelectorAll(\"input[aria-label='Half-life at energy 1']\")]"
                           ".map(e => e.value).join('|') === '7 days|1 day'")
    page.get_by_role("button", name="Evaluate", exact=True).click()
    wait_for_chart_titled(page, "Retrieval quality", "Recall@10 against the half-life")
    assert {"Retrieval quality", "Recall@10 against the half-life"} <= set(chart_titles(page))
    table = page.locator("[data-testid='stDataFrame']").first
    table.wait_for()
    shots(page, "evaluate-2-compared")
    frames = page.locator("[data-testid='stDataFrame']")
    assert frames.count() >= 2
    # open the first missed question: a click on its row selects it
    questions = frames.nth(1)
    questions.scroll_into_view_if_needed()
    box = questions.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 52)  # the first data row's selection cell
    detail = page.get_by_text("Set B:").first
    detail.wait_for(timeout=30_000)
    detail.scroll_into_view_if_needed()
    shots(page, "evaluate-3-missed-question")
