"""Interference: who reinforces whom, who cancels whom, and how the lattice synchronises."""
from __future__ import annotations

import streamlit as st

from core.engine import Lattice
from core.errors import LatticeError
from ui import charts
from ui.compute import extreme_pairs, gem_indices, looked_ahead, thin_times, trajectory
from ui.context import PageContext, page_context
from ui.controls import gem_picker
from ui.interference import TitlesByIndex, most_coherent, pairs_table, phase_degrees
from ui.tables import download_csv

NAME_WIDTH = 300  # px: room for a title of ~40 characters, and every number column still in view
PAIR_COLUMNS = {
    "I_ij": st.column_config.NumberColumn(format="%.4f", width="small"),
    "gem A": st.column_config.TextColumn(width=NAME_WIDTH, help="Title (hover a cell for all of it)"),
    "gem B": st.column_config.TextColumn(width=NAME_WIDTH, help="Title (hover a cell for all of it)"),
    "linked": st.column_config.CheckboxColumn(width="small"),
    "id A": st.column_config.TextColumn(width="medium"), "id B": st.column_config.TextColumn(width="medium"),
    "Δφ (°)": st.column_config.NumberColumn(format="%.1f"),
    "c_A": st.column_config.NumberColumn(format="%.3f"), "c_B": st.column_config.NumberColumn(format="%.3f")}


def heatmap_controls(ctx: PageContext, titles: dict) -> tuple[float, list | None, int]:
    """Look-ahead and the heatmap's gems; returns ``(ahead, chosen indices or None, count)``
    (None: the ``count`` most coherent gems after the look-ahead)."""
    ids = list(ctx.lattice.ids)
    n = len(ids)
    c1, c2, c3 = st.columns([1.2, 1, 1])
    ahead = c1.number_input(f"Look ahead ({ctx.time_unit}s)", min_value=0.0, max_value=10_000.0, value=0.0,
                            step=1.0, key="int_ahead",
                            help="Evolve a copy by this much under the session's parameters first.")
    mode = c2.radio("Gems in the heatmap", ["Most coherent", "Choose gems"], key="int_mode", horizontal=True)
    if mode == "Most coherent":
        count = c3.slider("How many", min_value=min(2, n), max_value=max(2, min(n, 2000)), value=min(n, 120),
                          key="int_count", help=f"Above {charts.DRAWN_HEATMAP_SIDE} gems the heatmap is "
                                                "block-averaged (more cells than the chart has pixels would not "
                                                "show).")
        return float(ahead), None, count
    chosen = gem_picker(st, "Gems", "int_gems", ids, titles, ctx.lattice.coherence, 12)
    chosen_idx = gem_indices(ctx.lattice, chosen)
    return float(ahead), chosen_idx, len(chosen_idx)


def heatmap(lat: Lattice, chosen_idx, titles: dict) -> None:
    if len(chosen_idx) < 2:
        st.warning("Choose at least two gems for the heatmap.")
        return
    ids = list(lat.ids)
    matrix, order, block = charts.interference_view(lat.coherence, lat.phase, chosen_idx,
                                                    max_side=charts.DRAWN_HEATMAP_SIDE)
    st.plotly_chart(charts.interference_heatmap(matrix, [titles[ids[i]] for i in order], phase_degrees(lat, order),
                                                block=block, total=len(order)), key="int_heatmap")


# ------------------------------------------------------------------ pairs
def strongest_pairs(ctx: PageContext, lat: Lattice, ahead: float, titles: dict) -> None:
    st.subheader("Strongest pairs in the whole lattice")
    k = st.slider("Pairs to list", 3, 50, 10, key="int_k")
    top_pairs, bottom_pairs = extreme_pairs(ctx.lattice, ctx.cache_key, ctx.params.to_dict(), ahead, int(k))
    left, right = st.container(), st.container()  # one above the other: each table gets the full width
    with left:
        st.markdown("**Most constructive** (in phase, both coherent)")
        top = pairs_table(lat, top_pairs, titles)
        st.dataframe(top, hide_index=True, column_config=PAIR_COLUMNS, key="int_top")
        download_csv(top, f"{ctx.name}-constructive-pairs.csv", key="int_top_csv")
    with right:
        st.markdown("**Most destructive** (opposed phase, both coherent)")
        bottom = pairs_table(lat, bottom_pairs, titles)
        st.dataframe(bottom, hide_index=True, column_config=PAIR_COLUMNS, key="int_bottom")
        download_csv(bottom, f"{ctx.name}-destructive-pairs.csv", key="int_bottom_csv")


# ---------------------------------------------------------- network and R
def network_and_sync(ctx: PageContext, lat: Lattice, ahead: float, titles: dict) -> None:
    unit = ctx.time_unit
    st.subheader("Entanglements and synchronisation")
    g1, g2 = st.columns([1.1, 1])
    with g1:
        links = st.select_slider("Links to draw (the strongest)", [25, 50, 100, 200, 500, 1000, 2000], value=100,
                                 key="int_links", help="More links than this make the network unreadable.")
        st.plotly_chart(charts.entanglement_network(lat.phase, lat.coherence, TitlesByIndex(lat.ids, titles),
                                                    ctx.lattice.edge_arrays(), max_edges=int(links)), key="int_network")
    with g2:
        horizon = st.number_input(f"R(t) horizon ({unit}s)", min_value=0.1, max_value=10_000.0, value=48.0,
                                  step=1.0, key="int_horizon")
        try:
            traj = trajectory(ctx.lattice, ctx.cache_key, ctx.params.to_dict(), float(horizon),
                              float(ctx.params.dt) if ctx.params.dt > 0 else 0.1, ())
        except LatticeError as exc:
            st.error(str(exc))
            return
        drawn, _ = thin_times(traj.series)
        marker = ctx.lattice.t + ahead if ahead else None
        st.plotly_chart(charts.order_parameter_over_time(drawn, unit, marker), key="int_order")
        st.caption("R = 1: all gems in phase and fully coherent; R ≈ 0: phases spread out (or coherence lost). "
                   "A positive coupling K pulls entangled gems together.")


# ---------------------------------------------------------------------- page
ctx = page_context()
titles = ctx.titles()
st.title("Interference")
st.caption("I_ij = cos(φi − φj)·ci·cj: positive when two gems are in phase (they reinforce each other), "
           "negative when opposed (they cancel). Shown for the lattice at its clock plus an optional look-ahead.")
ahead, chosen_idx, count = heatmap_controls(ctx, titles)
try:  # at the clock: the loaded state itself (read-only here); a look-ahead: a cached evolved copy
    lat = ctx.lattice if ahead == 0 else looked_ahead(ctx.lattice, ctx.cache_key, ctx.params.to_dict(), ahead)
except LatticeError as exc:
    st.error(str(exc))
    st.stop()
heatmap(lat, most_coherent(lat, count) if chosen_idx is None else chosen_idx, titles)
strongest_pairs(ctx, lat, ahead, titles)
network_and_sync(ctx, lat, ahead, titles)
