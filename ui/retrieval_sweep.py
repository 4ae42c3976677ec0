"""The Sweep tab's retrieval outcomes and the optimiser panel (widgets of the Parameters page).

A question set (the shipped MemoryBank set when the lattice holds its evidence, or an uploaded
JSONL) is ranked as of each question's own time under every grid point of one or two
parameters (``core.evaluation.grid.sweep_outcomes``: recall@5, recall@10, MRR, nDCG@10 with 95 %
bootstrap intervals), or searched by ``core.evaluation.optimise`` (Optuna TPE, seeded). The
half-life at energy 1 is an axis in durations ("1h", "7 days"), beside the numeric parameters
the ranking reads. Nothing heavy runs until a button is pressed: the corpus (every gem's
embedding) is read then, once per lattice version (``ui.evaluate.cached_corpus``).
"""
from __future__ import annotations


import pandas as pd
import streamlit as st

from core.access import Permission
from core.engine import PARAM_SPECS, Cancelled, LatticeParams, apply_settings, humanize_duration, parse_duration
from core.errors import LatticeError, ValidationError
from core.evaluation import (MAX_GRID_POINTS as MAX_POINTS, MAX_TRIALS, Axis, QuestionSet, optimise, parse_axis,
                             sweep_outcomes)
from ui import experiments as X
from ui.cancel import LongWork
from ui.charts.evaluation import METRIC_LABELS
from ui.charts.experiments import best_row, outcome_heatmap, outcome_line_chart, trials_chart
from ui.context import LATTICE_KEY, PageContext
from ui.controls import reset_params
from ui.evaluate import (METRICS, SHIPPED_GEMS, SHIPPED_LATTICE, cached_corpus, choose_questions, missing_evidence,
                         shipped_available)
from ui.tables import download_csv

# The parameters the evaluation's ranking reads (core.evaluation.rankers); half_life sets λ.
RETRIEVAL_PARAMS = ("half_life", "alpha", "coherence_floor", "min_score", "w_relevance", "w_recency", "w_importance")
HALF_LIFE_LABEL = "Half-life at energy 1"
SCORING_LABELS = {"product": "product s·c^α", "floor": "floor s·(φ + (1−φ)·c^α)",
                  "weighted": "weighted relevance + recency + importance"}
SWEEP_WORK = LongWork("rs", "the retrieval sweep")
SEARCH_WORK = LongWork("ro", "the search")
SWEEP_RESULT, SEARCH_RESULT, USED = "rs_result", "ro_result", "ro_used"


def axis_labels(time_unit: str) -> dict[str, str]:
    """Human labels with units of :data:`RETRIEVAL_PARAMS` (the half-life humanised on the axes)."""
    return {"half_life": HALF_LIFE_LABEL, **X.param_axis_labels(RETRIEVAL_PARAMS[1:], time_unit)}


def default_range(name: str, params: LatticeParams) -> tuple[str | float, str | float, bool]:
    """``(from, to, log)`` offered for ``name``: 1 hour to a year (log) for the half-life, about a
    quarter to three times the session's value otherwise (the whole 0-1 range for a 0-1 share)."""
    if name == "half_life":
        return "1h", "1y", True
    spec = PARAM_SPECS[name]
    if spec.maximum == 1.0:
        return float(spec.minimum), 1.0, False
    lo, hi = X.default_range(name, getattr(params, name))
    return lo, hi, False


def range_inputs(name: str, label: str, params: LatticeParams, key: str, points: int | None):
    """From / to (/ points) / log inputs of one parameter: ``(low, high, n, log)`` as typed."""
    lo, hi, log = default_range(name, params)
    cols = st.columns([1, 1, 0.8, 0.6] if points else [1, 1, 0.6])
    if name == "half_life":
        low = cols[0].text_input(f"{label}: from", value=lo, key=f"{key}_{name}_from",
                                 help="A duration: 30 min, 36h, 7 days, 2w, 1y (a bare number: lattice time units)")
        high = cols[1].text_input(f"{label}: to", value=hi, key=f"{key}_{name}_to")
    else:
        step = float(PARAM_SPECS[name].step or 0.01)
        low = cols[0].number_input(f"{label}: from", value=float(lo), step=step, format="%g", key=f"{key}_{name}_from")
        high = cols[1].number_input(f"{label}: to", value=float(hi), step=step, format="%g", key=f"{key}_{name}_to")
    n = None
    if points:
        n = cols[2].number_input(f"{label}: points", min_value=2, max_value=60, value=points, step=1,
                                 key=f"{key}_{name}_n")
    log = cols[-1].checkbox("log scale", value=log, key=f"{key}_{name}_log", help="Values spaced evenly in log")
    return low, high, n, log


def _switch_to(name: str) -> None:
    st.session_state[LATTICE_KEY] = name


def tab_retrieval(ctx: PageContext) -> None:
    """The retrieval side of the Sweep tab: the question set, a 1-D/2-D sweep, the optimiser."""
    try:
        store = ctx.store
    except LatticeError as exc:
        st.info(f"Retrieval outcomes need the gems' texts and embeddings: {exc}")
        return
    questions = choose_questions("rs")
    if questions is None:
        return
    missing = missing_evidence(ctx.lattice.ids, questions)
    if missing:
        st.warning(f"Lattice {ctx.name!r} does not hold this set's evidence (for example {', '.join(missing[:3])}): "
                   "its retrieval outcomes would all be 0.")
        if store.exists(SHIPPED_LATTICE):
            st.button(f"Switch to lattice {SHIPPED_LATTICE!r}", on_click=_switch_to, args=(SHIPPED_LATTICE,),
                      key="rs_switch", type="primary")
        elif ctx.actor.can(Permission.EDIT) and shipped_available():
            if st.button(f"Import the MemoryBank gems as lattice {SHIPPED_LATTICE!r} (memory preset)",
                         key="rs_import", type="primary"):
                with st.spinner("Importing 566 timestamped gems…"):
                    store.import_path(SHIPPED_LATTICE, SHIPPED_GEMS, ctx.actor, preset="memory")
                st.rerun()  # the next run offers the switch
        else:
            st.caption("Ask a researcher to import the lattice the shipped questions were written for "
                       "(the Evaluate page offers it).")
        return
    unit, labels = ctx.time_unit, axis_labels(ctx.time_unit)
    m1, m2 = st.columns(2)
    metric = m1.selectbox("Retrieval outcome", METRICS, index=METRICS.index("mrr"), format_func=METRIC_LABELS.get,
                          key="rs_metric", help="Mean over the questions, with a 95 % bootstrap interval.")
    rules = list(SCORING_LABELS)
    scoring = m2.selectbox("Scoring rule", rules, index=rules.index(ctx.params.scoring), format_func=SCORING_LABELS.get,
                           key="rs_scoring", help="Coherence floor φ acts under *floor* only; the three weights "
                                                  "under *weighted* only.")
    base = ctx.params.replace(scoring=scoring)  # the others as set under Tune
    key = (ctx.name, ctx.loaded.version, questions.sha256)
    st.caption(f"{len(questions)} questions over {len(ctx.lattice):,} gems; each is ranked as of its own time, "
               "nothing is written. The other parameters are as set under *Tune*.")
    sweep_panel(ctx, store, questions, base, metric, labels, key)
    st.divider()
    optimiser_panel(ctx, store, questions, base, metric, labels, key)


# --------------------------------------------------------------------- sweep
def sweep_panel(ctx: PageContext, store, questions: QuestionSet, base: LatticeParams, metric: str,
                labels: dict, key: tuple) -> None:
    swept = st.multiselect("Parameters to sweep (one or two)", list(RETRIEVAL_PARAMS), default=["half_life"],
                           max_selections=2, format_func=labels.get, key="rs_params")
    axes, problem = [], None
    for name in swept:
        low, high, n, log = range_inputs(name, labels[name], base, "rs", 13 if len(swept) == 1 else 8)
        try:
            axes.append(parse_axis(f"{name}={low}:{high}:{int(n)}" + (":log" if log else ""), ctx.time_unit))
        except LatticeError as exc:
            problem = f"{labels[name]}: {exc}"
    cells = 1
    for a in axes:
        cells *= len(a.values)
    if problem:
        st.error(problem)
    elif cells > MAX_POINTS:
        problem = f"{cells} grid points is over the limit of {MAX_POINTS}: use fewer points."
        st.error(problem)
    b1, b2, b3 = st.columns([1, 1, 3])
    run = b1.button("Run retrieval sweep", key="rs_run", type="primary", icon=":material/play_arrow:",
                    disabled=not swept or problem is not None)
    SWEEP_WORK.stop_button(b2)
    if swept and not problem:
        b3.caption(f"{cells} grid points × {len(questions)} questions.")
    if run:
        run_sweep(ctx, store, questions, axes, base, metric, key)
    res = st.session_state.get(SWEEP_RESULT)
    if res and res["key"] == key:
        show_sweep(ctx, res, labels)


def run_sweep(ctx: PageContext, store, questions: QuestionSet, axes: list[Axis], base: LatticeParams, metric: str,
              key: tuple) -> None:
    """Every grid point evaluated (Stop ends it; nothing kept); the result in the session."""
    bar = st.progress(0.0, text="Ranking every question as of its own time…")
    SWEEP_WORK.start(bar)

    def progress(fraction: float) -> None:
        SWEEP_WORK.progress(fraction)
        if SWEEP_WORK.should_stop():
            raise Cancelled("stopped")

    try:
        corpus = cached_corpus(store, store.url, ctx.name, ctx.loaded.version)
        df = sweep_outcomes(corpus, questions, axes, base=base, progress=progress, should_stop=SWEEP_WORK.should_stop)
    except LatticeError as exc:  # Cancelled, a bad point: nothing kept
        bar.empty()
        if isinstance(exc, Cancelled):
            st.info("The retrieval sweep was stopped: nothing of it was kept.", icon=":material/stop_circle:")
        else:
            st.error(f"Retrieval sweep not run: {exc}")
        return
    finally:
        SWEEP_WORK.done()
    bar.empty()
    st.session_state[SWEEP_RESULT] = {"key": key, "df": df, "params": [a.name for a in axes],
                                      "log": [a.log for a in axes], "metric": metric, "base": base}


def settings_text(settings: dict, labels: dict, time_unit: str) -> str:
    """``"Half-life at energy 1 = 7 days, Coherence exponent α = 1.2"``."""
    return ", ".join(f"{labels.get(n, n)} = " + (humanize_duration(float(v), time_unit) if n == "half_life"
                                                  else f"{float(v):.4g}") for n, v in settings.items())


def readable(df: pd.DataFrame, names: list[str], labels: dict, time_unit: str) -> pd.DataFrame:
    """A results table as people read it: human column names, the half-life humanised."""
    out = df.copy()
    numbers = out.select_dtypes("number").columns.difference(["trial", *names])
    out[numbers] = out[numbers].round(3)  # metrics to 3 decimals; the swept values as set
    if "half_life" in out.columns:
        out["half_life"] = [humanize_duration(float(v), time_unit) for v in out["half_life"]]
    rename = {n: labels.get(n, n) for n in names}
    for m in METRICS:
        label = METRIC_LABELS[m]
        rename.update({m: label, f"{m}_low": f"{label} low", f"{m}_high": f"{label} high"})
    return out.rename(columns=rename)


def show_sweep(ctx: PageContext, res: dict, labels: dict) -> None:
    df, names, metric, unit = res["df"], res["params"], res["metric"], ctx.time_unit
    label = METRIC_LABELS[metric]
    if len(names) == 1:
        fig = outcome_line_chart(df, names[0], metric, label, labels[names[0]], unit, log=res["log"][0])
    else:
        fig = outcome_heatmap(df, names, metric, label, labels, unit)
    st.plotly_chart(fig, key="rs_chart")
    best = best_row(df, metric)
    settings = {n: best[n] for n in names}
    st.markdown(f"**Best {label}: {best[metric]:.3f}** (95 % interval {best[f'{metric}_low']:.3f} to "
                f"{best[f'{metric}_high']:.3f}) at {settings_text(settings, labels, unit)}.")
    use_button(ctx, res["base"], settings, labels, "rs_use", "Use the best point")
    shown = readable(df, names, labels, unit)
    st.dataframe(shown, hide_index=True, height=220, key="rs_table")
    download_csv(shown, f"{ctx.name}-retrieval-sweep-{'-'.join(names)}.csv", key="rs_csv")


def _use(params: LatticeParams, text: str) -> None:
    reset_params(params)
    st.session_state[USED] = text


def use_button(ctx: PageContext, base: LatticeParams, settings: dict, labels: dict, key: str, label: str) -> None:
    """A button applying ``settings`` (on ``base``) to this session's parameters, as *Use λ* does."""
    text = settings_text(settings, labels, ctx.time_unit)
    try:
        params = apply_settings(base, settings)
    except LatticeError as exc:
        st.error(f"Cannot apply {text}: {exc}")
        return
    st.button(label, key=key, icon=":material/check_circle:", on_click=_use, args=(params, text),
              help=f"Sets {text} (and the scoring rule {base.scoring}) in this session; the stored lattice is "
                   "not changed.")
    if st.session_state.get(USED) == text:
        st.success(f"This session now uses {text}: see *Tune*.")


# ------------------------------------------------------------------ optimiser
def search_space(names: list[str], labels: dict, base: LatticeParams, time_unit: str) -> dict:
    """``{name: (low, high, log)}`` from the panel's inputs (half-lives in lattice time units)."""
    space = {}
    for name in names:
        low, high, _, log = range_inputs(name, labels[name], base, "ro", None)
        if name == "half_life":
            low, high = parse_duration(low, time_unit, "half_life"), parse_duration(high, time_unit, "half_life")
        if not low < high:
            raise ValidationError(name, f"{labels[name]}: 'from' must be below 'to'")
        space[name] = (float(low), float(high), bool(log))
    return space


def optimiser_panel(ctx: PageContext, store, questions: QuestionSet, base: LatticeParams, metric: str,
                    labels: dict, key: tuple) -> None:
    st.subheader("Search for the best parameters")
    st.caption(f"Optuna's TPE sampler tries parameter sets within the ranges and keeps the one with the best "
               f"{METRIC_LABELS[metric]}; the same seed gives the same trials.")
    names = st.multiselect("Parameters to search", list(RETRIEVAL_PARAMS), default=["half_life"],
                           format_func=labels.get, key="ro_params")
    try:
        space = search_space(names, labels, base, ctx.time_unit)
        problem = None
    except LatticeError as exc:
        space, problem = {}, str(exc)
        st.error(problem)
    t1, t2, _ = st.columns([1, 1, 2])
    trials = t1.number_input("Trials", min_value=1, max_value=MAX_TRIALS, value=24, step=8, key="ro_trials",
                             help="Parameter sets tried, in batches of 8 (the similarities are computed once a batch).")
    seed = t2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="ro_seed")
    b1, b2, _ = st.columns([1, 1, 3])
    run = b1.button("Run the search", key="ro_run", type="primary", icon=":material/travel_explore:",
                    disabled=not names or problem is not None)
    SEARCH_WORK.stop_button(b2)
    if run:
        bar = st.progress(0.0, text="Searching…")
        SEARCH_WORK.start(bar)
        try:
            corpus = cached_corpus(store, store.url, ctx.name, ctx.loaded.version)
            result = optimise(corpus, questions, space, metric=metric, trials=int(trials), seed=int(seed), base=base,
                              progress=SEARCH_WORK.progress, should_stop=SEARCH_WORK.should_stop)
        except LatticeError as exc:  # Cancelled before a batch finished, a bad range: nothing kept
            bar.empty()
            if isinstance(exc, Cancelled):
                st.info("The search was stopped before a batch of trials finished: nothing was kept.",
                        icon=":material/stop_circle:")
            else:
                st.error(f"Search not run: {exc}")
        else:
            bar.empty()
            st.session_state[SEARCH_RESULT] = {"key": key, "result": result, "base": base}
        finally:
            SEARCH_WORK.done()
    state = st.session_state.get(SEARCH_RESULT)
    if state and state["key"] == key:
        show_search(ctx, state, labels)


def show_search(ctx: PageContext, state: dict, labels: dict) -> None:
    result, unit = state["result"], ctx.time_unit
    label = METRIC_LABELS[result.metric]
    best = result.best
    r1, r2 = st.columns([1, 2])
    r1.metric(f"Best {label}", f"{best.value:.3f}", help="95 % bootstrap interval below; mean over the questions.")
    r1.caption(f"95 % interval {best.low:.3f} to {best.high:.3f} · {len(result.trials)} trials · seed {result.seed}")
    r2.markdown(f"**Best parameters:** {settings_text(result.best_settings, labels, unit)}")
    with r2:
        use_button(ctx, state["base"], result.best_settings, labels, "ro_use", "Use these parameters")
    names = [n for n in result.trials.columns if n not in ("trial", result.metric)]
    st.plotly_chart(trials_chart(result.trials, result.metric, label), key="ro_chart")
    table = readable(result.trials.sort_values(result.metric, ascending=False), names, labels, unit)
    st.dataframe(table, hide_index=True, height=220, key="ro_table")
    download_csv(table, f"{ctx.name}-search-{result.metric}.csv", key="ro_csv")
