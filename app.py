"""Gem Lattice Workbench: the Streamlit entry point.

``streamlit run app.py`` (``make run``): page setup, the login gate, and
``st.navigation`` over the pages this user's role may see (``ui/navigation.py``).
Each page draws the shared sidebar itself through ``ui.context.page_context()``.
"""
from __future__ import annotations

import streamlit as st

from core.monitoring import configure_logging
from ui.auth import login_gate
from ui.navigation import build_navigation
from ui.recovery_banner import recovery_banner

configure_logging("INFO")  # state-change JSON lines to the server log (idempotent)
st.set_page_config(page_title="Gem Lattice Workbench", page_icon="💎", layout="wide",
                   initial_sidebar_state="expanded")

actor = login_gate(hide_navigation=True)  # shows the login form and stops until someone is logged in
recovery_banner()  # "recovering" / "read-only" after a failover or restore (core.store.recovery)
build_navigation(actor).run()
