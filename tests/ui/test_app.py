"""app.py: the login gate (real streamlit-authenticator path), roles, refuse-to-start."""
from __future__ import annotations

import pytest

from tests.ui.helpers import app_as, new_app, texts


def login(at, username: str, password: str):
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    return at


def test_login_form_is_shown_with_the_demo_hint():
    at = new_app().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert "Demo mode" in texts(at.info) and "`demo`" in texts(at.info)
    assert not at.get("plotly_chart")  # nothing of the workbench before login


@pytest.mark.parametrize("role", ["admin", "researcher", "viewer"])
def test_demo_login_works_for_each_role(role):
    at = login(new_app().run(), role, "demo")
    assert not at.exception
    assert at.session_state["authentication_status"] is True
    assert [t.value for t in at.title] == ["Evolution"]  # the default page
    assert f"Signed in as **{role}** · {role}" in texts(at.sidebar.caption)
    assert at.get("plotly_chart")


def test_wrong_password_is_refused():
    at = login(new_app().run(), "researcher", "wrong")
    assert not at.exception
    assert "incorrect" in texts(at.error)
    assert not at.title or "Evolution" not in texts(at.title)


def test_logout_returns_to_the_login_form():
    at = login(new_app().run(), "viewer", "demo")
    at.button(key="logout_button").click().run()
    assert "logged out" in texts(at.success)
    at.run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]


def test_refuses_to_start_outside_demo_mode_with_the_example_key(monkeypatch, tmp_path):
    monkeypatch.delenv("LATTICE_DEMO")
    monkeypatch.setenv("LATTICE_CREDENTIALS", str(tmp_path / "missing.yaml"))
    at = new_app()
    at.secrets["cookie_key"] = "CHANGE-ME-this-is-the-example-cookie-key-not-a-secret"
    at.run()
    assert not at.exception
    msg = texts(at.error)
    assert "cannot start" in msg and "example key" in msg and "no credentials file" in msg
    assert not at.text_input  # no login form


def test_refuses_to_start_with_demo_users_outside_demo_mode(monkeypatch, tmp_path):
    from core.auth import demo_credentials, save_credentials_file
    path = tmp_path / "credentials.yaml"
    save_credentials_file(path, demo_credentials())
    monkeypatch.delenv("LATTICE_DEMO")
    monkeypatch.setenv("LATTICE_CREDENTIALS", str(path))
    monkeypatch.setenv("LATTICE_COOKIE_KEY", "k" * 48)
    at = new_app().run()
    assert "public demo password" in texts(at.error)


def test_pages_listed_by_role_and_admin_only_for_admins():
    from core.access import Actor
    from ui.navigation import PAGES, visible_pages
    everyone = [p.title for p in PAGES if p.title != "Admin"]
    assert [p.title for p in visible_pages(Actor("a", "admin"))] == [p.title for p in PAGES]
    for role in ("researcher", "viewer"):
        assert [p.title for p in visible_pages(Actor(role, role))] == everyone
    for role in ("viewer", "researcher"):  # not even registered in st.navigation for them
        at = app_as(role)
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page("pages/7_Admin.py")
    at = app_as("admin", "pages/7_Admin.py")
    assert not at.exception and [t.value for t in at.title] == ["Admin"]


def test_login_is_locked_after_repeated_failures(monkeypatch):
    monkeypatch.setenv("LATTICE_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("LATTICE_LOGIN_LOCKOUT_S", "600")  # its own throttle instance (keyed by settings)
    at = new_app().run()
    login(at, "researcher", "wrong-1")
    assert "incorrect" in texts(at.error) and "attempt(s) left" in texts(at.error)
    login(at, "researcher", "wrong-2")
    login(at, "researcher", "wrong-3")
    assert "locked for 600 s" in texts(at.error)
    login(at, "researcher", "demo")  # the right password, but locked: refused without checking it
    assert not at.exception
    assert "Log-in refused: too many failed log-ins" in texts(at.error)
    assert at.session_state["authentication_status"] is not True
    at2 = login(new_app().run(), "admin", "demo")  # another user from another session is not affected
    assert at2.session_state["authentication_status"] is True
