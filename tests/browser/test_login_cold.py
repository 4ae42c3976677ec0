"""The first "Log in" click on a cold, CPU-starved server must log in (no second click).

Cause of the old bug: the login page rendered streamlit-authenticator's cookie-manager
iframe component. Its iframe sends a value (a full rerun) whenever it loads, and with
Streamlit's fastReruns that rerun *stops* a run already in progress and starts a new one
whose widget state no longer holds the form's one-shot submit trigger. When the starved
browser finished loading the iframe just as the user clicked, the "Log in" run was
stopped before the password check and the click was lost.

Each attempt starts a fresh server while two busy-loop processes load the CPU, fills
the form at once and clicks "Log in" exactly once. To hit the race every time rather
than now and then, the test holds any component request of the page (``/component/``)
until the click has been sent, then lets it load: exactly what a starved browser does
when the iframe finishes loading at the moment of the click. The old login page failed
every attempt this way; the login page must not depend on that iframe at all.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.browser.conftest import _free_port, demo_app_env, start_app_server, stop_process

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ATTEMPTS = 3
BUSY_LOOPS = 2
LOGIN_TIMEOUT_MS = 45_000  # a cold server under the full run's load has needed more than 25 s


def _login_once(browser, url: str) -> tuple[bool, str]:
    """Open ``url`` in a fresh context, fill the form, click "Log in" once; (logged in?, sidebar)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    held: list = []
    released = False

    def hold_until_click(route):
        if released:
            route.continue_()
        else:
            held.append(route)

    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.route("**/component/**", hold_until_click)
        page.goto(url)
        page.get_by_label("Username").fill("researcher")
        page.get_by_label("Password", exact=True).fill("demo")
        page.get_by_role("button", name="Log in").click()  # once: no retry
        released = True
        for route in held:
            route.continue_()
        try:
            page.get_by_role("heading", name="Evolution").wait_for(timeout=LOGIN_TIMEOUT_MS)
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: the click was swallowed
            return False, ""
        return True, page.locator("[data-testid='stSidebar']").inner_text()
    finally:
        context.close()


def test_first_login_click_on_a_cold_busy_server_logs_in(browser, tmp_path):
    env = demo_app_env(tmp_path)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BUSY_LOOPS)]
    try:
        for attempt in range(1, ATTEMPTS + 1):
            port = _free_port()  # a cold server each time
            proc = start_app_server(env, port, tmp_path / f"streamlit-{attempt}.log")
            try:
                logged_in, sidebar = _login_once(browser, f"http://127.0.0.1:{port}")
            finally:
                stop_process(proc)
            assert logged_in, (f"attempt {attempt}/{ATTEMPTS}: the first 'Log in' click on a cold, busy server "
                               f"was swallowed (no Evolution page within {LOGIN_TIMEOUT_MS / 1000:g} s)")
            assert "Signed in as researcher" in sidebar, sidebar
    finally:
        for p in busy:
            p.kill()
            p.wait()
