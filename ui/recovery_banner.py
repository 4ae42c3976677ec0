"""The banner shown on every page while the database is recovering or read-only.

After a failover (a standby promoted) or a restore, the store verifies the state before it
accepts writes again (core.store.recovery). While it does, or when the verification failed
and writes are held, every page says so at the top; when all is well nothing is drawn.
Reading the status does not touch the database.
"""
from __future__ import annotations

import streamlit as st

from core.errors import LatticeError
from core.store import RecoveryStatus, recovery_status
from ui.services import get_store


def banner_text(status: RecoveryStatus) -> tuple[str, str] | None:
    """(kind, text) of the banner for ``status``: kind "warning" or "error"; None when writable."""
    if status.state == "recovering":
        return "warning", f"🔄 {status.message()} Reads work; a write may ask you to retry in a moment."
    if status.state == "read-only":
        return "error", f"🔒 {status.message()} An admin can repair the state and verify again."
    return None


def recovery_banner() -> None:
    """Draw the banner for this process's store (nothing when it is writable or not open)."""
    try:
        shown = banner_text(recovery_status(get_store()))
    except LatticeError:
        return  # the database is unreachable: the page itself says so
    if shown is not None:
        kind, text = shown
        (st.warning if kind == "warning" else st.error)(text)
