"""Item 10 in a real browser: the re-login cookie works, and stops working everywhere after "Log out"."""
from __future__ import annotations

import pytest

from tests.browser.conftest import _free_port, demo_app_env, start_app_server, stop_process

pytestmark = [pytest.mark.browser]
COOKIE = "gem_lattice_auth"


@pytest.fixture
def server(browser_available, tmp_path):
    env = demo_app_env(tmp_path)
    env["LATTICE_REVOKED_SESSIONS"] = str(tmp_path / "revoked.json")
    port = _free_port()
    proc = start_app_server(env, port, tmp_path / "streamlit.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def _open(browser, url, cookie=None):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    if cookie is not None:
        context.add_cookies([cookie])
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    return context, page


def _shows_login_form(page) -> bool:
    page.get_by_label("Username").wait_for()
    page.wait_for_timeout(1500)  # a valid cookie would have logged in by now
    return page.get_by_role("heading", name="Evolution").count() == 0


def test_cookie_captured_before_logout_is_refused_after_it(browser, server):
    a, page = _open(browser, server)
    page.get_by_label("Username").fill("researcher")
    page.get_by_label("Password", exact=True).fill("demo")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Evolution").wait_for()
    for _ in range(50):  # the cookie manager component sets it asynchronously
        cookie = next((c for c in a.cookies() if c["name"] == COOKIE), None)
        if cookie:
            break
        page.wait_for_timeout(200)
    assert cookie, "no login cookie was set"
    assert cookie["sameSite"] == "Strict"
    assert cookie["httpOnly"] is False  # set from JavaScript: documented in README, cannot be HttpOnly

    b, other = _open(browser, server, cookie)  # a second browser with a copy of the cookie
    other.get_by_role("heading", name="Evolution").wait_for()  # re-login from the cookie works

    tampered = {**cookie, "value": cookie["value"][:-3] + ("AAA" if cookie["value"][-3:] != "AAA" else "BBB")}
    t, forged = _open(browser, server, tampered)
    assert _shows_login_form(forged)

    page.get_by_role("button", name="Log out").click()
    page.get_by_text("You are logged out").wait_for()

    c, stolen = _open(browser, server, cookie)  # the copy taken before the log-out
    assert _shows_login_form(stolen)
    other.reload()  # the second browser's next page load
    assert _shows_login_form(other)
    for ctx in (a, b, c, t):
        ctx.close()
