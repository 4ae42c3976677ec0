"""Evaluate: what two parameter sets do to retrieval quality on real, dated questions.

Each question is ranked as of its own time (nothing is written); the metrics come with 95%
bootstrap intervals, beside published baselines; the recall-against-half-life curve shows
where each rule is best; per question, the evidence's rank under each set and why it was missed.
The two sets are chosen here, or taken from two saved runs of the lattice and re-evaluated, with
what differs from when they were saved (the question set's and the lattice snapshot's sha256).
"""
from __future__ import annotations


import streamlit as st

from core.access import Permission
from core.engine import PRESET_HELP, PRESET_NAMES, SCORING_RULES, Cancelled, apply_settings, preset_params
from core.errors import LatticeError
from core.evaluation import BASELINES, evaluate
from ui.charts.evaluation import half_life_curve, metrics_chart
from ui.cancel import LongWork
from ui.context import LATTICE_KEY, PageContext, page_context, require_store
from ui.evaluate import (SHIPPED_GEMS, SHIPPED_LATTICE, cached_corpus, choose_questions, fingerprint, half_life_sweep,
                         metrics_display, metrics_table, missing_evidence, per_question, reproducibility, run_label,
                         run_params, run_record, saved_runs, saved_vs_now, shipped_available)
from ui.tables import download_csv

RESULT_KEY = "evaluate_result"
MODES = ["two parameter sets", "two saved runs"]
SCORING_LABELS = {"product": "product s·c^α (the seed)", "floor": "floor s·(φ + (1−φ)·c^α)",
                  "weighted": "weighted relevance + recency + importance"}


def _switch_to(name: str) -> None:
    st.session_state[LATTICE_KEY] = name


def offer_the_shipped_lattice(ctx: PageContext, store, missing: list[str]) -> None:
    """The set's evidence is not in this lattice: switch to (or import) the one it belongs to."""
    st.warning(f"Lattice {ctx.name!r} does not hold this set's evidence (for example {', '.join(missing[:3])}). "
               "Evaluate on the lattice the questions were written for.")
    if store.exists(SHIPPED_LATTICE):
        st.button(f"Switch to lattice {SHIPPED_LATTICE!r}", on_click=_switch_to, args=(SHIPPED_LATTICE,),
                  key="ev_switch", type="primary")
    elif ctx.actor.can(Permission.EDIT) and shipped_available():
        if st.button(f"Import the MemoryBank gems as lattice {SHIPPED_LATTICE!r} (memory preset)", key="ev_import",
                     type="primary"):
            with st.spinner("Importing 566 timestamped gems…"):
                store.import_path(SHIPPED_LATTICE, SHIPPED_GEMS, ctx.actor, preset="memory")
            _switch_to_after_import()
    else:
        st.caption(f"Ask a researcher to import it: `python -m core import {SHIPPED_GEMS.relative_to(SHIPPED_GEMS.parents[2])} "
                   f"--lattice {SHIPPED_LATTICE} --preset memory`.")
    st.stop()


def _switch_to_after_import() -> None:
    st.session_state["ev_pending_switch"] = SHIPPED_LATTICE
    st.rerun()


def parameter_set(column, label: str, ctx: PageContext, default_start: str):
    """One parameter set: a starting point, its half-life and scoring rule (None on a bad half-life)."""
    with column:
        st.markdown(f"**Set {label}**")
        starts = ["the lattice's parameters", *[f"preset {p}" for p in PRESET_NAMES]]
        start = st.selectbox("Start from", starts, index=starts.index(default_start), key=f"ev_{label}_start",
                             help="; ".join(f"{p}: {h}" for p, h in PRESET_HELP.items()))
        base = ctx.loaded.lattice.params if start == starts[0] else preset_params(start.split()[-1], ctx.loaded.lattice.params)
        half = st.text_input("Half-life at energy 1", value=base.half_life_text(), key=f"ev_{label}_half_{start}",
                             help="For example 42 min, 36h, 7 days, 2w or inf (no decay)")
        scoring = st.selectbox("Scoring rule", SCORING_RULES, index=SCORING_RULES.index(base.scoring),
                               format_func=SCORING_LABELS.get, key=f"ev_{label}_scoring_{start}")
        settings = {"half_life": half.replace("∞", "inf"), "scoring": scoring}
        if scoring == "floor":
            settings["coherence_floor"] = st.slider("Coherence floor φ", 0.0, 1.0, float(base.coherence_floor), 0.05,
                                                    key=f"ev_{label}_floor_{start}")
        try:
            return apply_settings(base, settings)
        except LatticeError as exc:
            st.error(str(exc))
            return None


def show_provenance(notes: list[tuple[bool, str]]) -> None:
    """A saved run against now: what is the same as a caption, what differs as a warning."""
    for same, text in notes:
        (st.caption if same else st.warning)(("✓ " if same else "") + text[0].upper() + text[1:] + ".")


def choose_saved_runs(ctx: PageContext, store, questions):
    """Sets A and B from two saved evaluation runs of this lattice (any of their parameter sets):
    (a, b, origins), a or b None when a run's set cannot be used (its error shown)."""
    runs = saved_runs(store, ctx.name)
    if runs.empty:
        st.info(f"No evaluation run is saved on lattice {ctx.name!r} yet: evaluate two parameter sets and press "
                "“Save as a run” (researchers), then compare saved runs here.")
        st.stop()
    labels = {int(r["id"]): run_label(r) for _, r in runs.iterrows()}
    ids = list(labels)
    chosen, origins = {}, {}
    for column, side, default in zip(st.columns(2), ("A", "B"), (0, min(1, len(ids) - 1))):
        with column:
            st.markdown(f"**Set {side}**")
            rid = st.selectbox("Saved run", ids, index=default, format_func=labels.get, key=f"ev_run_{side}")
            row = runs[runs["id"] == rid].iloc[0]
            sets = list(row["sets"])
            same_run = side == "B" and origins.get("A", {}).get("run") == rid
            # one run on both sides: its own A against its own B; two runs: each run's first set
            index = sets.index(side) if (same_run or side == "A") and side in sets else 0
            label = st.selectbox("Its parameter set", sets, index=index, key=f"ev_run_{side}_set_{rid}",
                                 help="A saved evaluation stores every set it compared (the baselines re-use them)")
            try:
                params = run_params(row["metrics"], label)
            except LatticeError as exc:
                st.error(str(exc))
                chosen[side] = None
                continue
            floor = f" with φ = {params.coherence_floor:g}" if params.scoring == "floor" else ""
            st.caption(f"Half-life {params.half_life_text()} at energy 1, {SCORING_LABELS[params.scoring]}{floor}, "
                       f"k = {params.k}")
            show_provenance(reproducibility(row["metrics"], questions, None)[:1])
            chosen[side] = params
            origins[side] = {"run": rid, "set": label, "metrics": row["metrics"]}
    return chosen["A"], chosen["B"], origins


EVALUATION = LongWork("ev", "the evaluation")


def corpus_of(ctx: PageContext, store):
    """The evaluation corpus (texts and embeddings of every gem: read on the first Evaluate,
    then kept per lattice version), not on every page run."""
    return cached_corpus(store, store.url, ctx.name, ctx.loaded.version)


def run(ctx: PageContext, corpus, questions, a, b, baselines: list[str], key: tuple, origins: dict | None) -> None:
    """Evaluate both sets and the baselines, then the half-life curves (Stop ends it; nothing kept).
    ``origins``: the saved runs the sets come from (their figures are then set beside today's)."""
    bar = st.progress(0.0, text="Ranking every question as of its own time…")
    EVALUATION.start(bar)
    points = [("A", "lattice", a), ("B", "lattice", b)] + [(name, name, a) for name in baselines]

    def progress(share: float, offset: float):
        def update(fraction: float) -> None:
            EVALUATION.progress(offset + share * fraction)
            if EVALUATION.should_stop():
                raise Cancelled("stopped")
        return update

    try:
        results = evaluate(corpus, questions, points, progress=progress(0.5, 0.0))
        curves = half_life_sweep(corpus, questions, {"A": a, "B": b}, progress=progress(0.5, 0.5))
    except Cancelled:
        EVALUATION.done()
        bar.empty()
        st.info("Stopped: nothing was evaluated.")
        return
    EVALUATION.done()
    bar.empty()
    st.session_state[RESULT_KEY] = {"key": key, "results": results, "curves": curves, "questions": questions,
                                    "origins": origins,
                                    "lattice_sha256": fingerprint(corpus) if origins else None}


def show_saved_against_now(state: dict) -> None:
    """Each compared run: does it reproduce (question set and lattice sha256), and its saved
    figures beside today's."""
    st.subheader("Saved runs against now")
    for side, origin in state["origins"].items():
        st.markdown(f"**Set {side}**: run {origin['run']}, its set {origin['set']}")
        show_provenance(reproducibility(origin["metrics"], state["questions"], state["lattice_sha256"]))
    table = saved_vs_now(state["origins"], state["results"])
    st.dataframe(table, hide_index=True, key="ev_saved_vs_now", column_config={
        "saved": st.column_config.NumberColumn(format="%.3f", help="the value the run recorded when it was saved"),
        "now": st.column_config.NumberColumn(format="%.3f", help="the same set re-evaluated now"),
        "change": st.column_config.NumberColumn(format="%+.3f")})


def show(ctx: PageContext, store, state: dict) -> None:
    results, curves, questions = state["results"], state["curves"], state["questions"]
    if state.get("origins"):
        show_saved_against_now(state)
    table = metrics_table(results)
    st.dataframe(metrics_display(table), hide_index=True, key="ev_table")
    c1, c2 = st.columns(2)
    c1.plotly_chart(metrics_chart(table, ["recall@5", "recall@10", "mrr", "ndcg@10"]), key="ev_metrics_chart")
    marks = {f"A: {results[0].params.half_life_text()}": results[0].params.half_life(),
             f"B: {results[1].params.half_life_text()}": results[1].params.half_life()}
    c2.plotly_chart(half_life_curve(curves, "recall@10", ctx.time_unit, marks), key="ev_curve")
    st.subheader("Per question")
    detail = per_question(questions, results[0], results[1])
    only_missed = st.toggle("Only questions a set missed (evidence not in its top k)", value=True, key="ev_only_missed")
    shown = detail[(detail["why A missed"] != "") | (detail["why B missed"] != "")] if only_missed else detail
    event = st.dataframe(shown, hide_index=True, key="ev_questions", on_select="rerun", selection_mode="single-row",
                         column_config={
                             "question": st.column_config.TextColumn(width="large"),
                             "rank under A": st.column_config.NumberColumn(
                                 format="%.0f", help="best rank of the question's evidence; empty: not retrieved "
                                                     "at all (below the minimum score, or not a candidate)"),
                             "rank under B": st.column_config.NumberColumn(format="%.0f")})
    picked = event.selection.rows if event and event.selection else []
    if picked:
        row = shown.iloc[picked[0]]
        q = next(x for x in questions if x.id == row["id"])
        with st.container(border=True):
            st.markdown(f"**{q.question}** · asked {q.asked_at} · {q.category}")
            texts = ctx.store.gem_texts(ctx.name, list(q.evidence))
            for _, gem in texts.iterrows():
                st.markdown(f"- `{gem['id']}` {gem['title']}")
            for label in ("A", "B"):
                if row[f"why {label} missed"]:
                    st.caption(f"Set {label}: {row[f'why {label} missed']}")
    d1, d2 = st.columns(2)
    with d1:
        download_csv(detail, f"{ctx.name}-evaluation-per-question.csv", key="ev_csv", label="Per-question CSV")
    with d2:
        if ctx.actor.can(Permission.EDIT) and st.button("Save as a run", key="ev_save"):
            run_id = ctx.store.save_run(ctx.name, f"evaluation {questions.source.split('/')[-1]}", results[0].params,
                                        run_record(questions, corpus_of(ctx, store), results, seed=0), ctx.actor)
            st.success(f"Saved as run {run_id}: seed, both parameter sets, the question set's and the lattice's "
                       "sha256 are recorded, so it can be reproduced.")


def main() -> None:
    ctx = page_context()
    st.title("Evaluate")
    st.caption("Retrieval quality of two parameter sets on dated questions: each question is ranked as of "
               "its own time, over the gems that existed then; nothing is written.")
    store = require_store(ctx)
    pending = st.session_state.pop("ev_pending_switch", None)
    if pending and pending != ctx.name:
        st.button(f"Imported. Open lattice {pending!r}", on_click=_switch_to, args=(pending,), type="primary",
                  key="ev_open_imported")
        st.stop()
    questions = choose_questions("ev")
    if questions is None:
        st.stop()
    missing = missing_evidence(ctx.lattice.ids, questions)  # the page's view: no corpus read yet
    if missing:
        offer_the_shipped_lattice(ctx, store, missing)
    mode = st.radio("Compare", MODES, horizontal=True, key="ev_mode",
                    help="Two parameter sets chosen here, or the sets of two saved evaluation runs, re-evaluated")
    origins = None
    if mode == MODES[0]:
        left, right = st.columns(2)
        a = parameter_set(left, "A", ctx, "the lattice's parameters")
        b = parameter_set(right, "B", ctx, "preset seed")
    else:
        a, b, origins = choose_saved_runs(ctx, store, questions)
    baselines = st.multiselect("Baselines beside them", BASELINES, default=["similarity", "bm25"], key="ev_baselines")
    if a is None or b is None:
        st.stop()
    go, stop = st.columns([1, 6])
    clicked = go.button("Evaluate", type="primary", key="ev_run")
    EVALUATION.stop_button(stop)
    # results belong to this lattice version, question set and (for runs) the runs' sets chosen
    key = (ctx.name, ctx.loaded.version, questions.sha256, mode,
           tuple((side, o["run"], o["set"]) for side, o in origins.items()) if origins else None)
    if clicked:
        run(ctx, corpus_of(ctx, store), questions, a, b, baselines, key, origins)
    state = st.session_state.get(RESULT_KEY)
    if state and state["key"] == key:
        show(ctx, store, state)
    else:
        st.info(f"{len(questions)} questions over {len(ctx.lattice):,} gems of lattice {ctx.name!r}: press Evaluate.")


main()
