"""Parameters & experiments: tune every parameter live, sweep one or two (lattice statistics or retrieval
quality, with an optimiser), fit the decay constant."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.engine import DYNAMIC_PARAMS, METRICS, PARAM_SPECS, LatticeParams, Trajectory, fit_decay
from core.errors import LatticeError
from ui import charts
from ui import experiments as X
from ui import retrieval_sweep as RS
from ui.cancel import LongWork
from ui.compute import trajectory
from ui.context import PageContext, page_context, write_button
from ui.controls import param_controls, reset_params
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
                "the lattice's own.")
    if sv1.button("Save this run", key="par_save_run", icon=":material/bookmark_add:", width="stretch",
                  **write_button(ctx, "save a run")):
        run_name = X.run_name(ctx.params, ctx.lattice.params)
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
SWEEP_KINDS = ["Lattice statistics at a horizon", "Retrieval quality on questions"]


def tab_sweep(ctx: PageContext) -> None:
    kind = st.radio("Outcome", SWEEP_KINDS, horizontal=True, key="sw_kind",
                    help="The lattice's own statistics after evolving it, or how well it retrieves the evidence "
                         "of dated questions (recall, MRR, nDCG) under each parameter set; with an optimiser.")
    if kind == SWEEP_KINDS[1]:
        RS.tab_retrieval(ctx)
    else:
        tab_sweep_statistics(ctx)


def tab_sweep_statistics(ctx: PageContext) -> None:
    unit = ctx.time_unit
    numeric = list(DYNAMIC_PARAMS)  # the parameters that change evolution
    labels = X.param_axis_labels(numeric, unit)  # "Decay scale λ (1/hour)": the lattice's time unit
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
        lo, hi = X.default_range(name, getattr(ctx.params, name))
        g1, g2, g3 = st.columns(3)
        step = float(spec.step or 0.01)
        step = min(step, lo) if lo > 0 else step  # a memory lattice's λ (~0.004) needs finer steps
        start = g1.number_input(f"{labels[name]}: from", value=lo, step=step, format="%g", key=f"sw_{name}_from")
        stop = g2.number_input(f"{labels[name]}: to", value=hi, step=step, format="%g", key=f"sw_{name}_to")
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
        st.plotly_chart(charts.sweep_chart(res["df"], res["params"], res["metric"], metric_label, labels, unit),
                        key="sw_chart")
        named = X.param_axis_labels(res["df"].columns.intersection(list(PARAM_SPECS)), unit)
        shown = X.with_half_life(res["df"], "lambda_", unit).rename(
            columns={**named, **{m: METRICS[m] for m in METRICS if m in res["df"].columns}})
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
                                              METRICS[metric], labels, ctx.time_unit)
            st.plotly_chart(fig, key=f"sw_compare_chart_{k}")
        else:
            for j, (n, d) in enumerate(members):
                st.plotly_chart(charts.sweep_chart(d["df"], d["params"], metric, f"{METRICS[metric]} · {n}", labels,
                                                   ctx.time_unit),
                                key=f"sw_compare_chart_{k}_{j}")


# ----------------------------------------------------------------------- fit
def show_fit(ctx: PageContext, obs: pd.DataFrame, fit_amplitude: bool, fit_offset: bool, key: str) -> None:
    """Fit λ to ``obs`` (t, coherence[, gem][, energy]) and show λ ± SE, the half-life ± SE, the
    misfit warnings, the chart, the tables and the button applying the fitted λ."""
    unit = ctx.time_unit
    groups = obs["gem"] if "gem" in obs.columns else None
    energy = obs["energy"] if "energy" in obs.columns else None
    try:
        fit = fit_decay(obs["t"], obs["coherence"], groups=groups, fit_amplitude=fit_amplitude,
                        fit_offset=fit_offset, energy=energy, time_unit=unit)
    except LatticeError as exc:  # FitError
        st.error(f"No fit: {exc}")
        return
    if not fit.energies_known:
        st.info("No energies given: every gem is taken as E = 1, with one shared time constant τ, and λ is that "
                "of a gem of energy 1 (λ = 1/τ). With an **energy** column each gem decays with its own "
                "τ = E/λ and the fit gives λ itself.")
    se = f" ± {fit.lambda_se:.2g}" if np.isfinite(fit.lambda_se) else " (standard error n/a)"
    k1, k2, k3, k4 = st.columns([1.7, 1.3, 1, 1])  # "0.00417 ± 3.8e-05" needs the room
    k1.metric(f"Decay scale λ (1/{unit})", f"{fit.lambda_:.4g}{se}",
              help="Estimate ± standard error." + ("" if fit.energies_known else " For a gem of energy 1."))
    k2.metric("half-life at E = 1", fit.half_life_text, help="ln 2 / λ, ± its standard error.")
    if fit.energies_known:
        k3.metric(f"τ at E = 1 ({unit}s)", f"{fit.tau:.4g}", help="1/λ; a gem of energy E decays with τ = E/λ.")
    else:
        tau_se = f" ± {fit.tau_se:.2g}" if np.isfinite(fit.tau_se) else ""
        k3.metric(f"τ, shared ({unit}s)", f"{fit.tau:.4g}{tau_se}", help="The one decay time constant of all gems.")
    k4.metric("residual std", f"{fit.residual_std:.3g}", help=f"{fit.n_points} observations")
    for warning in fit.warnings:
        st.warning(warning, icon=":material/warning:")
    st.plotly_chart(charts.decay_fit_chart(obs["t"], obs["coherence"], groups, fit, unit), key=f"{key}_chart")
    summary, table = X.fit_tables(fit)
    t1, t2 = st.columns(2)
    with t1:
        st.dataframe(X.summary_rows(summary), hide_index=True, height=460)
        download_csv(summary, "decay-fit.csv", key=f"{key}_csv")
    with t2:
        st.dataframe(table, hide_index=True, height=460)
        download_csv(table, "decay-fit-amplitudes.csv", key=f"{key}_amp_csv")
    lam = X.suggested_lambda(fit)
    if lam is not None:
        st.button(f"Use λ = {lam:.4g} in this session" + ("" if fit.energies_known else " (for E = 1)"),
                  key=f"{key}_apply", on_click=reset_params, args=(ctx.params.replace(lambda_=float(lam)),),
                  help=f"Sets the decay scale to the fitted λ: half-life {X.half_life_text(lam, unit)} at E = 1.")


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
                "(0-1), optionally **gem** (one decay curve per gem), **energy** (each gem's energy E: it decays "
                "with τ = E/λ) and **time_unit** (the unit of t: second, minute, hour or day). The model is "
                "c = A·exp(−λ (t − t0)/E) + C, fitted for λ with its standard error.")
    f1, f2 = st.columns([2, 1])
    upload = f1.file_uploader("Observations CSV", type=["csv"], key="fit_upload")
    with f2:
        fit_amplitude = st.checkbox("Fit amplitude A per gem", value=True, key="fit_amp")
        fit_offset = st.checkbox("Fit a floor C", value=False, key="fit_off")
        # A sample to try the fit with: four gems of mixed energies under the session's λ, with noise.
        download_csv(lambda: X.sample_observations(ctx.lattice, ctx.params), "sample-observations.csv",
                     key="fit_sample", label="Sample CSV")
        st.caption(f"The sample: four gems of mixed energies decaying with λ = {X.sample_lambda(ctx.params):g} "
                   f"per {ctx.time_unit}, with noise.")
    if upload is None:
        st.info("No file yet: download the sample CSV to try it.")
        return
    data = upload.getvalue()
    try:
        obs, notes = X.csv_energy_and_unit(data, read_observations_csv(data), ctx.time_unit)
    except LatticeError as exc:  # ValidationError (bad CSV)
        st.error(f"No fit: {exc}")
        return
    for note in notes:
        st.caption(note)
    show_fit(ctx, obs, fit_amplitude, fit_offset, "fit")


def fit_log(ctx: PageContext) -> None:
    st.markdown("Coherence of the lattice's gems replayed from its transaction log. Between two observations "
                "(or reflections, edits, imports, parameter changes) only clock advances change coherence "
                "(c ← c·exp(−λ·dt/E) for every gem), so each stretch *a state, then clock advances only* is a "
                "decay curve of every gem, with the energy the gem had in it. The most coherent gems of each "
                "stretch are followed, one amplitude per gem and stretch, and λ is fitted with their energies.")
    fit_offset = st.checkbox("Fit a floor C", value=False, key="fit_log_off")
    try:
        obs, replayed, stopped = log_observations(ctx.store, ctx.store.url, ctx.name, ctx.loaded.version)
    except LatticeError as exc:
        st.error(f"No observations from the log: {exc}")
        return
    stretches = obs["entry"].nunique()
    st.caption(f"{replayed} log entries replayed: {len(obs)} points of {obs['gem'].nunique()} gem curve(s) in "
               f"{stretches} decay stretch(es)." + (f" The replay stops early: {stopped}." if stopped else ""))
    scales = np.unique(obs["decay_scale"].dropna().to_numpy()) if not obs.empty else []
    if len(scales) > 1:
        st.warning(f"The log's clock advances used {len(scales)} decay scales (λ = "
                   f"{', '.join(f'{v:g}' for v in scales[:5])}): the fit assumes one. Compare its λ with those.")
    if obs.empty:
        st.info("The log has no decay yet: a stretch needs a state followed by at least one clock "
                "advance (*Advance the lattice clock* on the Evolution page, or a wall-clock lattice).")
    else:
        show_fit(ctx, obs, True, fit_offset, "fit_log")


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
