"""Item 10/15 through the app (AppTest): logging out revokes the cookie session everywhere;
the demo login page says where the server listens."""
from __future__ import annotations

import pytest

from tests.ui.helpers import new_app, texts

TOKEN_KEY = "_lattice_session_token"


@pytest.fixture(autouse=True)
def _own_revocation_list(monkeypatch, tmp_path):
    monkeypatch.setenv("LATTICE_DEMO", "1")
    monkeypatch.setenv("LATTICE_REVOKED_SESSIONS", str(tmp_path / "revoked.json"))


def _login(at, username="researcher", password="demo"):
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    return at


def test_logout_in_one_tab_ends_every_session_of_that_cookie():
    first = _login(new_app().run())
    payload = first.session_state[TOKEN_KEY]
    assert payload["username"] == "researcher" and len(payload["jti"]) == 32
    # a second tab restored from the same cookie carries the same cookie session
    second = new_app()
    for key, value in {"authentication_status": True, "username": "researcher", "name": "Demo researcher",
                       TOKEN_KEY: payload}.items():
        second.session_state[key] = value
    second.run()
    assert [t.value for t in second.title] == ["Evolution"]
    first.button(key="logout_button").click().run()
    assert "logged out" in texts(first.success)
    second.run()  # its next request: the revoked cookie session is refused
    assert not second.exception
    assert [t.label for t in second.text_input] == ["Username", "Password"]
    assert second.session_state["authentication_status"] is None


def test_demo_login_page_says_it_listens_on_this_machine_only():
    at = new_app().run()
    assert "listens on `127.0.0.1` only" in texts(at.info)
