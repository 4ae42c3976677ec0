""""Reset the demo" on the Lattice page (researcher/admin, lattice "demo" only, with a confirm
step): rebuilds the shipped demo lattice with its shipped parameters
(``core.service.ensure_demo(store, rebuild=True, actor=...)``, audited as ``demo.reset``),
then drops what this process keeps of the old one, so every page shows the fresh demo.
"""
from __future__ import annotations

import streamlit as st

from core.access import Permission
from core.errors import LatticeError
from core.service import DEMO_NAME, ensure_demo
from ui.context import PARAMS_FOR_KEY, PageContext, flash, forget_lattice_views
from ui.services import get_workbench

SURE_KEY = "lat_demo_reset_sure"


def can_reset(ctx: PageContext) -> bool:
    """Shown only on the demo lattice, to a role that may edit it."""
    return ctx.name == DEMO_NAME and ctx.can(Permission.EDIT)


def _reset(ctx: PageContext) -> None:
    try:
        ensure_demo(ctx.store, rebuild=True, actor=ctx.actor)  # checks the role, audits who asked
    except LatticeError as exc:
        flash("error", f"The demo was not reset: {exc}")
        return
    # The rebuilt lattice starts again at version 1: caches keyed by (name, version) could
    # otherwise serve the old demo's state as the new one's.
    st.cache_data.clear()
    get_workbench().lattices.forget(DEMO_NAME)
    forget_lattice_views()
    st.session_state.pop(PARAMS_FOR_KEY, None)  # the session takes the fresh demo's parameters
    for key in ("lat_open_id", "lat_open_choice", "lat_row_opened", "lat_export"):
        st.session_state.pop(key, None)
    st.session_state[SURE_KEY] = False
    flash("success", f"The demo lattice was reset: every gem is back to its shipped state, the parameters to "
                     f"the shipped ones and the clock to t = 0 (lattice **{DEMO_NAME}**, rebuilt for "
                     f"{ctx.actor.name}).")


def demo_reset(ctx: PageContext) -> None:
    """The confirm checkbox and the reset button (nothing for other lattices or for viewers)."""
    if not can_reset(ctx):
        return
    st.markdown("**Reset the demo**")
    st.caption("Rebuilds the demo lattice from the shipped files: every gem's coherence, energy and links and "
               "the parameters as shipped, the clock back to 0 (the log keeps what happened, with a restore entry). Use it when "
               "advancing (or a changed preset) has left the demo faded.")
    sure = st.checkbox("Yes, throw away every change to the demo lattice", key=SURE_KEY)
    st.button("Reset the demo", key="lat_demo_reset", type="primary", icon=":material/restart_alt:",
              disabled=not sure, on_click=_reset, args=(ctx,))
