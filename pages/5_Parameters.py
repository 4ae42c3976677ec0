"""Parameters & experiments: tune every parameter live, sweep one or two, fit the decay constant."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.engine import DYNAMIC_PARAMS, METRICS, PARAM_SPECS, LatticeParams, Trajectory, fit_decay
from core.errors import LatticeError
from ui import charts
from ui import experiments as X
from ui.cancel import LongWork
from ui.compute import trajectory
from ui.context import PageContext, page_context, write_button
from ui.controls import param_controls, param_labels, reset_params
from ui.decay_log import log_observations
from ui.runs import (SWEEP, compare_runs, run_label, save_preview_run, save_sweep_run, stored_runs,
                     sweep_detail)
from ui.tables import download_csv, read_observations_csv
from ui.text import plural


# ---------------------------------------------------------------------- tune
def tab_tune(ctx: PageContext) -> None:
    lat, unit = ctx.lattice, ctx.time_unit
    param_controls(ctx.params)
    r1, r2, _ = st.columns([1, 1, 3])
    r1.button("Reset to defaults", key="par_reset_defaults", on_click=reset_params, args=(LatticeParams(),),
              icon=":material/restart_alt:")
    r2.button("Reset to the lattice's own", key="par_reset_lattice", on_click=reset_params, args=(lat.params,))
    st.divider()
    p1, p2 = st.columns([1, 4])
    preview_h = p1.number_input(f"Preview horizon ({unit}s)", min_value=0.5, max_value=1000.0, value=12.0,
                                step=1.0, key="par_preview_h")
    dt = X.preview_step(ctx.params, preview_h)
    try:
        current = trajectory(lat, ctx.cache_key, ctx.params.to_dict(), float(preview_h), dt, ())
        baseline = trajectory(lat, ctx.cache_key, LatticeParams(time_unit=ctx.params.time_unit).to_dict(),
                              float(preview_h), dt, ())
    except LatticeError as exc:
        st.error(str(exc))
    else:
        preview(ctx, current, baseline, float(preview_h), p1, p2)
        saved_runs(ctx, current, float(preview_h))
    params_table = X.params_table(ctx.params)
    with st.expander("Parameters as a table"):
        st.dataframe(params_table, hide_index=True)
        download_csv(params_table, f"{ctx.name}-parameters.csv", key="par_params_csv")


def preview(ctx: PageContext, current: Trajectory, baseline: Trajectory, preview_h: float, p1, p2) -> None:
    """End-of-horizon figures (vs. the defaults) in ``p1``, the preview chart in ``p2``."""
    end, end0 = current.series.iloc[-1], baseline.series.iloc[-1]
    m = p1.container()
    m.metric(f"Mean coherence at +{preview_h:g}", f"{end.mean_coherence:.3f}",
             X.vs_defaults(end.mean_coherence - end0.mean_coherence))
    m.metric(f"R at +{preview_h:g}", f"{end.R:.3f}", X.vs_defaults(end.R - end0.R))
    m.metric(f"Mean uncertainty at +{preview_h:g}", f"{end.mean_uncertainty:.3f}",
             X.vs_defaults(end.mean_uncertainty - end0.mean_uncertainty), delta_color="inverse")
    with p2:
        st.plotly_chart(charts.preview_chart(current.series, baseline.series, ctx.time_unit), key="par_preview")


def saved_runs(ctx: PageContext, current: Trajectory, preview_h: float) -> None:
    """Save the preview as a run; compare saved runs. Runs live in the store: they persist and
    every user of the lattice sees them."""
    sv1, sv2 = st.columns([1, 3])
    sv2.caption("Saved runs are stored in the database with their parameters and preview trajectory, "
                "shared with everyone working on this lattice. Named after the parameters that differ from "
                "the defaults.")
    if sv1.button("Save this run", key="par_save_run", icon=":material/bookmark_add:", width="stretch",
                  **write_button(ctx, "save a run")):
        run_name = X.run_name(ctx.params)
        try:
            run_id = save_preview_run(ctx, run_name, current.series, preview_h)
        except LatticeError as exc:
            st.error(f"Not saved: {exc}")
        else:
            label = run_label(run_id, run_name, ctx.actor.name)
            kept = [n for n in st.session_state.get("par_compare", []) if n != label]
            st.session_state["par_compare_next"] = kept[-2:] + [label]  # the new run next to the last ones
            st.toast(f"Saved run {label!r}")
            st.rerun()
    try:
        runs = stored_runs(ctx)
    except LatticeError as exc:
        st.error(f"Saved runs unavailable: {exc}")
        runs = {}
    if "par_compare_next" in st.session_state:
        st.session_state["par_compare"] = [n for n in st.session_state.pop("par_compare_next") if n in runs]
    elif "par_compare" in st.session_state:
        st.session_state["par_compare"] = [n for n in st.session_state["par_compare"] if n in runs]
    else:
        st.session_state["par_compare"] = list(runs)[:3][::-1]
    if not runs:
        return
    chosen_runs = st.multiselect("Compare saved runs", list(runs), key="par_compare",
                                 help="Newest first; saved by anyone on this lattice.")
    if chosen_runs:
        series, table = compare_runs(runs, chosen_runs)
        st.plotly_chart(charts.compare_runs_chart(series, ctx.time_unit), key="par_compare_chart")
        st.caption("Parameters that differ between the chosen runs:" if len(chosen_runs) > 1
                   else "Parameters of the run:")
        st.dataframe(table, hide_index=True)
        download_csv(table, "saved-runs-parameters.csv", key="par_compare_csv")


# --------------------------------------------------------------------- sweep
def tab_sweep(ctx: PageContext) -> None:
    unit = ctx.time_unit
    numeric = list(DYNAMIC_PARAMS)  # the parameters that change evolution
    labels = param_labels(numeric)
    st.markdown("Evolve a copy of the lattice over a grid of one or two parameters (the others as set under "
                "*Tune*) and measure an outcome at the horizon.")
    s1, s2, s3 = st.columns([2, 1.2, 1])
    swept = s1.multiselect("Parameters to sweep (one or two)", numeric, default=["lambda_"], max_selections=2,
                           format_func=labels.get, key="sw_params")
    metric = s2.selectbox("Outcome", list(METRICS), format_func=METRICS.get, key="sw_metric")
    horizon = s3.number_input(f"Horizon ({unit}s)", min_value=0.0, max_value=10_000.0, value=6.0, step=1.0,
                              key="sw_horizon")
    grid = {}
    for name in swept:
        spec = PARAM_SPECS[name]
        lo, hi = X.default_range(name)
        g1, g2, g3 = st.columns(3)
        step = float(spec.step or 0.01)
        start = g1.number_input(f"{labels[name]}: from", value=lo, step=step, key=f"sw_{name}_from")
        stop = g2.number_input(f"{labels[name]}: to", value=hi, step=step, key=f"sw_{name}_to")
        points = g3.number_input(f"{labels[name]}: points", min_value=2, max_value=60,
                                 value=15 if len(swept) == 1 else 12, step=1, key=f"sw_{name}_n")
        grid[name] = (start, stop, int(points))
    work = LongWork("sw", "the sweep")
    b1, b2, _ = st.columns([1, 1, 3])
    run = b1.button("Run sweep", key="sw_run", type="primary", icon=":material/play_arrow:", disabled=not swept)
    work.stop_button(b2)
    if run:
        bar = st.progress(0.0, text="Sweeping…")
        work.start(bar)
        try:
            result = X.run_sweep(ctx.lattice, ctx.params, grid, float(horizon), progress=work.progress,
                                 should_stop=work.should_stop)
        except LatticeError as exc:  # Cancelled, WorkLimitExceeded, a bad grid: nothing kept
            bar.empty()
            st.error(f"Sweep not run: {exc}")
        else:
            bar.progress(1.0, text=f"Done: {len(result)} runs")
            st.session_state["sw_result"] = {"df": result, "params": list(swept), "metric": metric,
                                             "horizon": float(horizon)}
        finally:
            work.done()
    res = st.session_state.get("sw_result")
    if res:
        metric_label = f"{METRICS[res['metric']]} (+{plural(res['horizon'], unit)})"
        st.plotly_chart(charts.sweep_chart(res["df"], res["params"], res["metric"], metric_label, labels),
                        key="sw_chart")
        shown = res["df"].rename(columns={**param_labels(res["df"].columns.intersection(list(PARAM_SPECS))),
                                          **{m: METRICS[m] for m in METRICS if m in res["df"].columns}})
        st.dataframe(shown, hide_index=True, height=220)
        c1, c2 = st.columns([1, 3])
        download_csv(res["df"], f"{ctx.name}-sweep-{'-'.join(res['params'])}.csv", key="sw_csv")
        if c1.button("Save this sweep", key="sw_save", icon=":material/bookmark_add:", width="stretch",
                     **write_button(ctx, "save a sweep")):
            try:
                run_id, name = save_sweep_run(ctx, res, metric_label, labels)
            except LatticeError as exc:
                st.error(f"Not saved: {exc}")
            else:
                st.session_state["sw_compare_next"] = [run_label(run_id, name, ctx.actor.name)]
                st.toast(f"Saved sweep {name!r}")
                st.rerun()
        c2.caption("A saved sweep is stored with the saved runs (its grid, outcomes and parameters) and can be "
                   "compared with other sweeps below.")
    saved_sweeps(ctx, labels)


def saved_sweeps(ctx: PageContext, labels: dict) -> None:
    """Saved sweeps of this lattice: choose some to compare (same parameter and outcome: one chart)."""
    try:
        sweeps = stored_runs(ctx, kind=SWEEP)
    except LatticeError as exc:
        st.error(f"Saved sweeps unavailable: {exc}")
        return
    if not sweeps:
        return
    if "sw_compare_next" in st.session_state:
        st.session_state["sw_compare"] = [n for n in st.session_state.pop("sw_compare_next") if n in sweeps]
    chosen = st.multiselect("Compare saved sweeps", list(sweeps), key="sw_compare",
                            help="Newest first; saved by anyone on this lattice.")
    details = [(n, sweep_detail(sweeps[n])) for n in chosen]
    groups: dict[tuple, list] = {}
    for n, d in details:
        groups.setdefault((tuple(d["params"]), d["metric"]), []).append((n, d))
    for k, ((params, metric), members) in enumerate(groups.items()):
        if len(params) == 1:
            fig = charts.compare_sweeps_chart([(n, d["df"]) for n, d in members], params[0], metric,
                                              METRICS[metric], labels)
            st.plotly_chart(fig, key=f"sw_compare_chart_{k}")
        else:
            for j, (n, d) in enumerate(members):
                st.plotly_chart(charts.sweep_chart(d["df"], d["params"], metric, f"{METRICS[metric]} · {n}", labels),
                                key=f"sw_compare_chart_{k}_{j}")


# ----------------------------------------------------------------------- fit
def show_fit(ctx: PageContext, obs: pd.DataFrame, groups, fit_amplitude: bool, fit_offset: bool, key: str) -> None:
    """Fit τ to ``obs`` (t, coherence) and show the estimate, the chart and the tables."""
    unit = ctx.time_unit
    try:
        fit = fit_decay(obs["t"], obs["coherence"], groups=groups, fit_amplitude=fit_amplitude,
                        fit_offset=fit_offset)
    except LatticeError as exc:  # FitError
        st.error(f"No fit: {exc}")
        return
    k1, k2, k3, k4 = st.columns(4)
    k1.metric(f"τ ({unit}s)", f"{fit.tau:.4g}", help="Decay time constant, estimate.")
    k2.metric("standard error of τ", f"± {fit.tau_se:.2g}" if np.isfinite(fit.tau_se) else "n/a")
    k3.metric("λ implied for E = 1", f"{fit.lambda_for_energy(1.0):.4g}", help="λ = E/τ.")
    k4.metric("residual std", f"{fit.residual_std:.3g}", help=f"{fit.n_points} observations")
    st.plotly_chart(charts.decay_fit_chart(obs["t"], obs["coherence"], groups, fit, unit), key=f"{key}_chart")
    summary, table = X.fit_tables(fit)
    t1, t2 = st.columns(2)
    with t1:
        st.dataframe(summary, hide_index=True)
        download_csv(summary, "decay-fit.csv", key=f"{key}_csv")
    with t2:
        st.dataframe(table, hide_index=True)
        download_csv(table, "decay-fit-amplitudes.csv", key=f"{key}_amp_csv")
    lam = X.suggested_lambda(fit)
    if lam is not None:
        st.button(f"Use λ = {lam:.4g} (for E = 1) in this session", key=f"{key}_apply", on_click=reset_params,
                  args=(ctx.params.replace(lambda_=float(lam)),))


def tab_fit(ctx: PageContext) -> None:
    source = st.radio("Observations", ["Uploaded CSV", "This lattice's log"], horizontal=True, key="fit_source",
                      help="A CSV of your own observations, or the lattice's own history replayed from its "
                           "transaction log.")
    if source == "Uploaded CSV":
        fit_uploaded(ctx)
    else:
        fit_log(ctx)


def fit_uploaded(ctx: PageContext) -> None:
    st.markdown("Upload coherence observations as CSV with columns **t** (lattice time units), **coherence** "
                "(0-1) and optionally **gem** (one decay curve per gem, shared τ). The model is "
                "c(t) = A·exp(−(t − t0)/τ) + C; for a gem of energy E, τ = E/λ.")
    f1, f2 = st.columns([2, 1])
    upload = f1.file_uploader("Observations CSV", type=["csv"], key="fit_upload")
    with f2:
        fit_amplitude = st.checkbox("Fit amplitude A per gem", value=True, key="fit_amp")
        fit_offset = st.checkbox("Fit a floor C", value=False, key="fit_off")
        # A sample to try the fit with: three demo gems under the current parameters, with noise.
        download_csv(X.sample_observations(ctx.lattice, ctx.params), "sample-observations.csv",
                     key="fit_sample", label="Sample CSV")
    if upload is None:
        st.info("No file yet: download the sample CSV to try it.")
        return
    try:
        obs = read_observations_csv(upload.getvalue())
    except LatticeError as exc:  # ValidationError (bad CSV)
        st.error(f"No fit: {exc}")
    else:
        show_fit(ctx, obs, obs["gem"] if "gem" in obs.columns else None, fit_amplitude, fit_offset, "fit")


def fit_log(ctx: PageContext) -> None:
    st.markdown("The lattice's **mean coherence** replayed from its transaction log. Between two "
                "observations (or edits, imports, parameter changes) only clock advances change coherence "
                "(c ← c·exp(−λ·dt/E) for every gem), so each stretch *a state, then clock advances only* is "
                "a decay curve: one amplitude per stretch, a shared τ. With gems of different energies the "
                "mean decays as a mix of exponentials; τ is its effective time constant "
                "(τ = E/λ for E ≈ the energies that still carry coherence).")
    fit_offset = st.checkbox("Fit a floor C", value=False, key="fit_log_off")
    try:
        obs, replayed, stopped = log_observations(ctx.store, ctx.store.url, ctx.name, ctx.loaded.version)
    except LatticeError as exc:
        st.error(f"No observations from the log: {exc}")
        return
    stretches = obs["gem"].nunique()
    st.caption(f"{replayed} log entries replayed: {len(obs)} points in {stretches} decay stretch(es)."
               + (f" The replay stops early: {stopped}." if stopped else ""))
    if obs.empty:
        st.info("The log has no decay yet: a stretch needs a state followed by at least one clock "
                "advance (*Advance the lattice clock* on the Evolution page, or a wall-clock lattice).")
    else:
        show_fit(ctx, obs, obs["gem"], True, fit_offset, "fit_log")


# ---------------------------------------------------------------------- page
ctx = page_context()
st.title("Parameters & experiments")
st.caption("Every model parameter, with its range and meaning (hover the ? icons). Changes apply to this "
           "session's simulations at once; the stored lattice is not changed.")
tabs = st.tabs(["Tune", "Sweep", "Fit decay"])
with tabs[0]:
    tab_tune(ctx)
with tabs[1]:
    tab_sweep(ctx)
with tabs[2]:
    tab_fit(ctx)
