"""Evolution: simulate the lattice forward, play it back, and advance the real clock."""
from __future__ import annotations

import numpy as np
import streamlit as st

from core.errors import LatticeError
from ui import charts
from ui.compute import frames, recorded_indices, thin_times, trajectory
from ui.context import flash, page_context
from ui.controls import gem_picker
from ui.tables import download_csv

ctx = page_context()
unit = ctx.time_unit
lat = ctx.lattice
titles = ctx.titles()
ids = list(lat.ids)
position = {gid: i for i, gid in enumerate(ids)}

st.title("Evolution")
st.caption(f"Simulate **{ctx.name}** forward from its clock t = {lat.t:.4g} {unit}s under the session's "
           "parameters. The simulation works on a copy; the stored lattice changes only with "
           "*Advance the lattice clock* below.")

# ------------------------------------------------------------------ controls
c1, c2, c3 = st.columns([1, 1, 3])
horizon = c1.number_input(f"Horizon ({unit}s)", min_value=0.1, max_value=10_000.0, value=24.0, step=1.0,
                          key="evo_horizon", help="How far ahead to simulate, in lattice time units.")
dt = c2.number_input(f"Step dt ({unit}s)", min_value=0.001, max_value=1000.0,
                     value=float(ctx.params.dt) if ctx.params.dt > 0 else 0.1, step=0.05, format="%.3f",
                     key="evo_dt", help="Simulation step (the parameter dt by default).")
chosen = gem_picker(c3, "Gems to follow", "evo_gems", ids, titles, lat.coherence, 4, max_selections=8,
                    help="Drawn as lines; all gems appear as a band.")
chosen_idx = [position[g] for g in chosen]

try:
    traj = trajectory(lat, ctx.cache_key, ctx.params.to_dict(), float(horizon), float(dt),
                      recorded_indices(lat, chosen_idx))
except LatticeError as exc:
    st.error(str(exc))
    st.stop()

series = traj.series
times = series["time"].to_numpy()
rec_ids, phase_frames, coh_frames = frames(traj)
rec_titles = [titles.get(g, g) for g in rec_ids]
rec_pos = {g: k for k, g in enumerate(rec_ids)}
highlight = [rec_pos[g] for g in chosen if g in rec_pos]
n_frames = len(times)
# The charts get at most MAX_CHART_POINTS time points (the followed gems only); the phasors use every frame.
drawn, drawn_gems = thin_times(series, traj.gems[traj.gems["gem"].isin(chosen)])
stride = max(1, n_frames // 60)  # a full play-through takes about 60 ticks

# ------------------------------------------------------------ play / scrub
st.session_state.setdefault("evo_playing", False)
if "evo_time" not in st.session_state or not times[0] <= st.session_state["evo_time"] <= times[-1]:
    st.session_state["evo_time"] = float(times[0])


def _toggle_play() -> None:
    playing = not st.session_state["evo_playing"]
    if playing and st.session_state.get("evo_time", times[0]) >= times[-1] - 1e-9:
        st.session_state["evo_time"] = float(times[0])  # play again from the start
    st.session_state["evo_playing"] = playing


playing = st.session_state["evo_playing"]
b1, b2, b3 = st.columns([1, 1, 4])
b1.button("Pause" if playing else "Play", key="evo_play", on_click=_toggle_play, type="primary",
          icon=":material/pause:" if playing else ":material/play_arrow:", width="stretch")
if b2.button("Rewind", key="evo_rewind", icon=":material/replay:", width="stretch"):
    st.session_state["evo_time"] = float(times[0])
    st.session_state["evo_playing"] = False
    st.rerun()
b3.caption(f"{n_frames} time points from t = {times[0]:.4g} to {times[-1]:.4g} {unit}s; "
           f"{len(rec_ids)} of {len(lat)} gems recorded individually.")


@st.fragment(run_every=0.5 if playing else None)
def live_view() -> None:
    if st.session_state.get("evo_playing"):
        k = int(np.searchsorted(times, st.session_state["evo_time"] - 1e-9))
        k = min(k + stride, n_frames - 1)
        st.session_state["evo_time"] = float(times[k])
        if k >= n_frames - 1:
            st.session_state["evo_playing"] = False
            st.rerun(scope="app")  # stop the timer
    step = float(dt) if n_frames > 1 else 0.1
    st.slider(f"Time ({unit}s)", min_value=float(times[0]), max_value=float(max(times[-1], times[0] + 1e-9)),
              step=step, key="evo_time", format="%.2f", help="Scrub through the simulation.")
    k = int(np.clip(np.searchsorted(times, st.session_state["evo_time"] - 1e-9), 0, n_frames - 1))
    t_now = float(times[k])
    z = series["R"].iloc[k] * np.exp(1j * series["psi"].iloc[k])  # R e^{i psi}
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.coherence_over_time(drawn, drawn_gems, titles, chosen, unit, t_now),
                        key="evo_coherence")
        st.plotly_chart(charts.uncertainty_over_time(drawn, drawn_gems, titles, chosen, unit, t_now),
                        key="evo_uncertainty")
    with right:
        st.plotly_chart(charts.phasor_polar(phase_frames[k], coh_frames[k], rec_titles, highlight, z,
                                            title=f"Phasors at t = {t_now:.3g} {unit}s"), key="evo_polar")
        st.plotly_chart(charts.order_parameter_over_time(drawn, unit, t_now), key="evo_order")


live_view()

with st.expander("Simulation table (one row per time point)"):
    st.dataframe(series, hide_index=True, height=240)
    download_csv(series, f"{ctx.name}-evolution.csv", key="evo_download")

# ------------------------------------------------------------- real clock
st.subheader("Advance the lattice clock")
st.caption("Evolves the lattice itself (not a copy) under its parameters: every page and user sees "
           "the new state. Needs the *edit* permission (researcher or admin); the engine checks it.")
a1, a2, a3 = st.columns([1, 1, 3])
adv_dt = a1.number_input(f"Δt ({unit}s)", min_value=0.0, max_value=10_000.0, value=1.0, step=0.5, key="evo_adv_dt")
if a2.button("Advance lattice", key="evo_advance", icon=":material/fast_forward:", width="stretch"):
    try:
        loaded = ctx.advance(float(adv_dt))
    except LatticeError as exc:
        st.error(f"Not advanced: {exc}")
    else:
        note = "" if loaded.persistent else (
            " This is the demo data source: the change lives in this server's memory only "
            "(shared by all sessions) and is gone after a restart.")
        flash("success", f"Lattice clock advanced by {adv_dt:g} to t = {loaded.lattice.t:.4g} {unit}s.{note}")
        st.rerun()
if not ctx.can("edit"):
    a3.caption(f"You are a {ctx.actor.role.value}: the engine will refuse to advance the clock.")
