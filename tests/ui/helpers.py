"""AppTest helpers: the app in demo mode, logged in as a chosen role.

``app_as(role, page)`` logs in the way a restored session is (session state set as
streamlit-authenticator sets it) and opens ``page`` through ``st.navigation``;
test_app.py covers the real login form separately.
"""
from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 60


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def app_as(role: str, page: str | None = None) -> AppTest:
    at = new_app()
    at.session_state["authentication_status"] = True
    at.session_state["username"] = role
    at.session_state["name"] = f"Demo {role}"
    at.run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
    return at


def charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def chart_json(chart) -> dict:
    return json.loads(chart.proto.spec)


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements)


def values(v):
    """A plotly JSON array (list, or plotly's base64 ``{"dtype", "bdata"}``) as numpy."""
    import base64

    import numpy as np
    if isinstance(v, dict) and "bdata" in v:
        arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return arr.reshape(v["shape"]) if "shape" in v and isinstance(v["shape"], (list, tuple)) else arr
    return np.asarray(v)
