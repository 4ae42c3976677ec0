"""Evolution: simulate the lattice forward, play it back, and advance the real clock."""
from __future__ import annotations

import time

import streamlit as st

from core.errors import LatticeError
from ui import charts
from ui.compute import gem_indices, recorded_indices, trajectory
from ui.context import PageContext, flash, page_context, write_button
from ui.controls import gem_picker
from ui.playback import DEFAULT_SPEED, SPEEDS, TICK_S, Playback
from ui.tables import download_csv
from ui.text import plural

END_PIN_S = 4 * TICK_S  # how long a finished play keeps its last frame against stale ticks, seconds


def simulation_controls(ctx: PageContext, titles: dict) -> tuple[float, float, list]:
    """Horizon, step and the gems to follow; returns ``(horizon, dt, chosen gem ids)``."""
    unit, lat = ctx.time_unit, ctx.lattice
    c1, c2, c3 = st.columns([1, 1, 3])
    horizon = c1.number_input(f"Horizon ({unit}s)", min_value=0.1, max_value=10_000.0, value=24.0, step=1.0,
                              key="evo_horizon", help="How far ahead to simulate, in lattice time units.")
    dt = c2.number_input(f"Step dt ({unit}s)", min_value=0.001, max_value=1000.0,
                         value=float(ctx.params.dt) if ctx.params.dt > 0 else 0.1, step=0.05, format="%.3f",
                         key="evo_dt", help="Simulation step (the parameter dt by default).")
    chosen = gem_picker(c3, "Gems to follow", "evo_gems", list(lat.ids), titles, lat.coherence, 4,
                        max_selections=8, help="Drawn as lines; all gems appear as a band.")
    return float(horizon), float(dt), chosen


# ------------------------------------------------------------ play / scrub
def _restart_clock() -> None:
    """Playing goes on from the time shown, timed from now (after Play or a speed change)."""
    st.session_state["evo_play_from"] = (time.monotonic(), float(st.session_state.get("evo_time", 0.0)))


def _toggle_play(first: float, last: float) -> None:
    playing = not st.session_state["evo_playing"]
    if playing and st.session_state.get("evo_time", first) >= last - 1e-9:
        st.session_state["evo_time"] = float(first)  # play again from the start
    st.session_state["evo_playing"] = playing
    st.session_state.pop("evo_end_pin", None)
    _restart_clock()


def player_buttons(ctx: PageContext, pb: Playback) -> bool:
    """Play/Pause and Rewind; returns whether the player is playing."""
    times = pb.times
    st.session_state.setdefault("evo_playing", False)
    if "evo_end_at" in st.session_state:  # a play just reached the horizon (live_view)
        st.session_state["evo_time"] = st.session_state.pop("evo_end_at")
    if "evo_time" not in st.session_state or not times[0] <= st.session_state["evo_time"] <= times[-1]:
        st.session_state["evo_time"] = float(times[0])
    playing = st.session_state["evo_playing"]
    b1, b2, b4, b3 = st.columns([1, 1, 1.3, 3])
    b1.button("Pause" if playing else "Play", key="evo_play", on_click=_toggle_play, args=(times[0], times[-1]),
              type="primary", icon=":material/pause:" if playing else ":material/play_arrow:", width="stretch")
    if b2.button("Rewind", key="evo_rewind", icon=":material/replay:", width="stretch"):
        st.session_state["evo_time"] = float(times[0])
        st.session_state["evo_playing"] = False
        st.session_state.pop("evo_end_pin", None)
        st.rerun()
    b4.select_slider("Speed", list(SPEEDS), value=DEFAULT_SPEED, key="evo_speed", on_change=_restart_clock,
                     help="Wall time of a full play-through of the horizon; frames are skipped to keep to it.")
    b3.caption(f"{pb.n_frames} time points from t = {times[0]:.4g} to {plural(times[-1], ctx.time_unit)}; "
               f"{len(pb.ids)} of {len(ctx.lattice)} gems recorded individually.")
    return playing


def live_view(pb: Playback, titles: dict, chosen: list, unit: str, dt: float) -> None:
    """The time slider and the four charts at its time (a fragment: the player ticks only this)."""
    times = pb.times
    finished = False
    if st.session_state.get("evo_playing"):
        started, t_start = st.session_state.get("evo_play_from") or (time.monotonic(), float(times[0]))
        k = pb.frame_at_wall(t_start, time.monotonic() - started, SPEEDS.get(st.session_state.get("evo_speed"), 30.0))
        st.session_state["evo_time"] = float(times[k])
        finished = k >= pb.n_frames - 1
    elif "evo_end_pin" in st.session_state:
        # A timer tick the browser sent before the play ended arrives after it, carrying the
        # slider's value of that tick (the frame before the last): for a moment after the
        # end, the end stays shown (a scrub by hand comes later than that).
        end, at = st.session_state["evo_end_pin"]
        if time.monotonic() - at < END_PIN_S:
            st.session_state["evo_time"] = end
        else:
            del st.session_state["evo_end_pin"]
    step = float(dt) if pb.n_frames > 1 else 0.1
    st.slider(f"Time ({unit}s)", min_value=float(times[0]), max_value=float(max(times[-1], times[0] + 1e-9)),
              step=step, key="evo_time", format="%.2f", help="Scrub through the simulation.")
    k = pb.frame_at(st.session_state["evo_time"])
    t_now = float(times[k])
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.coherence_over_time(pb.drawn, pb.drawn_gems, titles, chosen, unit, t_now),
                        key="evo_coherence")
        st.plotly_chart(charts.uncertainty_over_time(pb.drawn, pb.drawn_gems, titles, chosen, unit, t_now),
                        key="evo_uncertainty")
    with right:
        st.plotly_chart(charts.phasor_polar(pb.phase[k], pb.coherence[k], pb.titles, pb.highlight,
                                            pb.order_parameter(k), title=f"Phasors at t = {plural(t_now, unit)}"),
                        key="evo_polar")
        st.plotly_chart(charts.order_parameter_over_time(pb.drawn, unit, t_now), key="evo_order")
    if finished:  # the last frame (the horizon) is drawn; now stop the timer
        st.session_state["evo_playing"] = False
        # The app rerun re-applies the widget values this tick started with (the frame before the
        # last): the end time travels in a key of its own and is set before the slider is drawn.
        st.session_state["evo_end_at"] = float(times[-1])
        st.session_state["evo_end_pin"] = (float(times[-1]), time.monotonic())
        st.rerun(scope="app")


def simulation_table(ctx: PageContext, traj, titles: dict) -> None:
    series = traj.series
    with st.expander("Simulation table (one row per time point)"):
        st.dataframe(series, hide_index=True, height=240)
        d1, d2 = st.columns(2)
        with d1:
            download_csv(series, f"{ctx.name}-evolution.csv", key="evo_download", label="Totals (CSV)")
        with d2:
            gems = traj.gems
            recorded = len(gems) // len(series) if len(series) else 0  # the tidy table: gems x time points
            download_csv(lambda: gems.assign(title=gems["gem"].map(lambda g: titles.get(g, ""))),
                         f"{ctx.name}-evolution-gems.csv", key="evo_gems_download",
                         label=f"Per-gem trajectories, {recorded} gems (CSV)")


# ------------------------------------------------------------- real clock
def advance_clock(ctx: PageContext) -> None:
    unit = ctx.time_unit
    st.subheader("Advance the lattice clock")
    st.caption("Evolves the lattice itself (not a copy) under its parameters: every page and user sees "
               "the new state. Needs the *edit* permission (researcher or admin); the engine checks it.")
    a1, a2, a3 = st.columns([1, 1, 3])
    adv_dt = a1.number_input(f"Δt ({unit}s)", min_value=0.0, max_value=10_000.0, value=1.0, step=0.5,
                             key="evo_adv_dt")
    if a2.button("Advance lattice", key="evo_advance", icon=":material/fast_forward:", width="stretch",
                 **write_button(ctx, "advance the lattice clock")):
        try:
            loaded = ctx.advance(float(adv_dt))
        except LatticeError as exc:
            st.error(f"Not advanced: {exc}")
        else:
            note = "" if loaded.persistent else (
                " This is the demo data source: the change lives in this server's memory only "
                "(shared by all sessions) and is gone after a restart.")
            flash("success", f"Lattice clock advanced by {adv_dt:g} to t = "
                             f"{plural(loaded.lattice.t, unit)}.{note}")
            st.rerun()
    if not ctx.can("edit"):
        a3.caption(f"You are a {ctx.actor.role.value}: the engine will refuse to advance the clock.")


# ---------------------------------------------------------------------- page
ctx = page_context()
lat = ctx.lattice
st.title("Evolution")
st.caption(f"Simulate **{ctx.name}** forward from its clock t = {plural(lat.t, ctx.time_unit)} under the session's "
           f"parameters (preset {ctx.params.preset}; half-life at E = 1: {ctx.params.half_life_text()}, so a "
           "horizon of a few half-lives shows the decay). The simulation works on a copy; the stored lattice "
           "changes only with *Advance the lattice clock* below.")
titles = ctx.titles()
horizon, dt, chosen = simulation_controls(ctx, titles)
try:
    traj = trajectory(lat, ctx.cache_key, ctx.params.to_dict(), horizon, dt,
                      recorded_indices(lat, gem_indices(lat, chosen)))
except LatticeError as exc:
    st.error(str(exc))
    st.stop()
pb = Playback.of(traj, titles, chosen)
playing = player_buttons(ctx, pb)
st.fragment(live_view, run_every=TICK_S if playing else None)(pb, titles, chosen, ctx.time_unit, dt)
simulation_table(ctx, traj, titles)
advance_clock(ctx)
