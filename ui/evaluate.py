"""The Evaluate page's data: the shipped question set, cached corpora, results as tables (no widgets).

``core.evaluation`` does the work; this module adapts it to the page: a corpus cached per
lattice version (embeddings of 1e5 gems are hundreds of MB: one copy per process, not per
rerun), metric and per-question tables, the half-life sweep and what a saved run records.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import streamlit as st

from core.engine import LatticeParams, humanize_duration, lambda_for_half_life
from core.errors import LatticeError
from core.evaluation import (EvalCorpus, PointResult, QuestionSet, corpus_from_store, evaluate, load_questions,
                             metric_names, question_set)
from core.paths import DATA_DIR

SHIPPED_QUESTIONS = DATA_DIR / "memorybank-en" / "questions.jsonl"
SHIPPED_GEMS = DATA_DIR / "memorybank-en" / "gems.jsonl"
SHIPPED_LATTICE = "memorybank"
METRICS = metric_names((5, 10))
CURVE_POINTS = 13  # half-lives from 1 hour to a year, log-spaced


@st.cache_resource(max_entries=2, show_spinner="Reading the lattice for evaluation…")
def cached_corpus(_store, url: str, name: str, version: int) -> EvalCorpus:
    """The lattice as an evaluation corpus, per (database, lattice, version)."""
    return corpus_from_store(_store, name)


def missing_evidence(ids, questions: QuestionSet) -> list[str]:
    """Evidence gem ids of the set that are not among ``ids`` (the lattice's gems; first few)."""
    have = set(ids)
    out = []
    for q in questions:
        out.extend(e for e in q.evidence if e not in have)
        if len(out) >= 5:
            break
    return out[:5]


def metrics_table(results: list[PointResult]) -> pd.DataFrame:
    """One row per evaluated point: the value and interval of each metric, and display text."""
    rows = []
    for r in results:
        row = {"label": r.label, "ranker": r.ranker}
        for m in METRICS:
            est = r.report.overall[m]
            row[m], row[f"{m}_low"], row[f"{m}_high"] = est.value, est.low, est.high
        rows.append(row)
    return pd.DataFrame(rows)


def metrics_display(table: pd.DataFrame) -> pd.DataFrame:
    """The metrics table as people read it: "0.570 [0.472, 0.663]"."""
    out = pd.DataFrame({"ranker": table["label"]})
    names = {"recall@5": "Recall@5", "recall@10": "Recall@10", "mrr": "MRR", "ndcg@10": "nDCG@10"}
    for m in METRICS:
        out[names[m]] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" for v, lo, hi in
                         zip(table[m], table[f"{m}_low"], table[f"{m}_high"])]
    return out


def per_question(questions: QuestionSet, a: PointResult, b: PointResult) -> pd.DataFrame:
    """Per question: category, the best rank of its evidence under A and B (NaN: not retrieved
    at all) and why A / B missed it (evidence outside the top k)."""
    why = {}
    for label, res in (("A", a), ("B", b)):
        for miss in res.missed:
            why[(label, miss["question"])] = "; ".join(f"{e['gem']}: {e['reason']}" for e in miss["evidence"])
    def best(ranks: np.ndarray) -> float:  # NaN: not retrieved at all (or no evidence)
        r = float(ranks.min()) if ranks.size else math.nan
        return r if math.isfinite(r) else math.nan

    rows = [{"id": q.id, "question": q.question, "category": q.category,
             "rank under A": best(a.ranks[i]), "rank under B": best(b.ranks[i]),
             "why A missed": why.get(("A", q.id), ""), "why B missed": why.get(("B", q.id), "")}
            for i, q in enumerate(questions)]
    return pd.DataFrame(rows)


def half_life_sweep(corpus: EvalCorpus, questions: QuestionSet, sets: dict[str, LatticeParams],
                    progress: Callable[[float], None] | None = None) -> dict[str, pd.DataFrame]:
    """Each set's rule with its decay varied over half-lives from 1 hour to a year (in the
    lattice's unit): one evaluation, the similarities computed once for every point."""
    unit_hours = {"second": 1 / 3600, "minute": 1 / 60, "hour": 1.0, "day": 24.0}[corpus.params.time_unit]
    half_lives = np.geomspace(1.0, 24.0 * 365, CURVE_POINTS) / unit_hours
    points = [(f"{label}|{h}", "lattice", p.replace(lambda_=lambda_for_half_life(float(h))))
              for label, p in sets.items() for h in half_lives]
    results = evaluate(corpus, questions, points, explain=False, progress=progress)
    curves = {}
    for i, label in enumerate(sets):
        chunk = results[i * len(half_lives):(i + 1) * len(half_lives)]
        table = metrics_table(chunk)
        table["half_life"] = half_lives
        table["half_life_text"] = [humanize_duration(float(h), corpus.params.time_unit) for h in half_lives]
        curves[label] = table
    return curves


def fingerprint(corpus: EvalCorpus) -> str:
    """sha256 of what the evaluation read: ids, state, times, parameters, embeddings (a saved
    run is reproducible only on a lattice with the same fingerprint)."""
    h = hashlib.sha256()
    h.update("\x00".join(corpus.ids).encode())
    lat = corpus.lattice
    for arr in (lat.energy, lat.phase, lat.coherence, lat.uncertainty, corpus.created_t, corpus.last_observed_t,
                corpus.observations, np.array([lat.t])):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(repr(sorted(corpus.params.to_dict().items())).encode())
    h.update(np.ascontiguousarray(corpus.embeddings).tobytes())
    return h.hexdigest()


def run_record(questions: QuestionSet, corpus: EvalCorpus, results: list[PointResult], seed: int) -> dict:
    """The metrics of a saved evaluation run, with what reproduces it."""
    return {"kind": "evaluation", "seed": seed, "questions_sha256": questions.sha256, "questions": len(questions),
            "lattice_sha256": fingerprint(corpus),
            "points": {r.label: {"ranker": r.ranker, "params": r.params.to_dict(),
                                 **{m: r.report.overall[m].to_dict() for m in METRICS}} for r in results}}


def shipped_available() -> bool:
    return Path(SHIPPED_QUESTIONS).is_file() and Path(SHIPPED_GEMS).is_file()


def saved_runs(store, name: str) -> pd.DataFrame:
    """The evaluation runs saved on lattice ``name`` (newest first) that hold at least one
    lattice parameter set: id, name, created_at, actor, metrics, and ``sets`` (their labels,
    the baselines left out: they re-use a set's parameters under another ranker)."""
    runs = store.list_runs(name)
    rows = []
    for _, r in runs.iterrows():
        m = r["metrics"] if isinstance(r["metrics"], dict) else {}
        points = m.get("points") if m.get("kind") == "evaluation" else None
        sets = [label for label, p in (points or {}).items() if isinstance(p, dict) and p.get("ranker") == "lattice"]
        if sets:
            rows.append({"id": int(r["id"]), "name": r["name"], "created_at": r["created_at"], "actor": r["actor"],
                         "metrics": m, "sets": sets})
    return pd.DataFrame(rows, columns=["id", "name", "created_at", "actor", "metrics", "sets"])


def run_label(run: pd.Series) -> str:
    """How a saved run reads in a chooser: "run 7: evaluation questions.jsonl, 2026-12-01 17:20 (ria)"."""
    when = pd.Timestamp(run["created_at"]).strftime("%Y-%m-%d %H:%M")
    return f"run {run['id']}: {run['name']}, {when} ({run['actor']})"


def run_params(metrics: dict, label: str) -> LatticeParams:
    """The parameter set ``label`` of a saved run's metrics; a LatticeError naming the run's
    set when it is missing or no longer a valid parameter set (a renamed parameter, say)."""
    point = (metrics.get("points") or {}).get(label)
    if not isinstance(point, dict) or not isinstance(point.get("params"), dict):
        raise LatticeError(f"the saved run has no parameter set {label!r}; its sets: "
                           f"{', '.join(metrics.get('points') or {}) or 'none'}")
    try:
        return LatticeParams.from_dict(point["params"])
    except (LatticeError, TypeError, ValueError) as exc:
        raise LatticeError(f"set {label!r} of the saved run is not a valid parameter set today ({exc})") from None


def reproducibility(metrics: dict, questions: QuestionSet, lattice_sha256: str | None) -> list[tuple[bool, str]]:
    """What differs between a saved run and now, as (same, sentence) pairs: the question set's
    sha256 and the lattice snapshot's (``lattice_sha256``: :func:`fingerprint` of the corpus now;
    None: not read yet). A run's figures reproduce only when both are the same."""
    out = []
    saved_q = metrics.get("questions_sha256")
    if saved_q == questions.sha256:
        out.append((True, f"same question set (sha256 {questions.sha256[:12]}…)"))
    else:
        out.append((False, f"question set differs: saved with sha256 {str(saved_q)[:12]}…, now {questions.sha256[:12]}… "
                           f"({metrics.get('questions', '?')} questions then, {len(questions)} now): the saved "
                           "figures were measured on other questions"))
    saved_l = metrics.get("lattice_sha256")
    if lattice_sha256 is None:
        out.append((True, "lattice snapshot: compared once evaluated"))
    elif saved_l == lattice_sha256:
        out.append((True, f"same lattice snapshot (sha256 {lattice_sha256[:12]}…)"))
    else:
        out.append((False, f"lattice differs: saved on a snapshot with sha256 {str(saved_l)[:12]}…, now "
                           f"{lattice_sha256[:12]}… (gems, their state, parameters or embeddings changed since): "
                           "the saved figures need not reproduce"))
    return out


def saved_vs_now(origins: dict[str, dict], results: list[PointResult]) -> pd.DataFrame:
    """Per compared set and metric: the value the run saved and the value re-evaluated now.
    ``origins``: set label ("A"/"B") -> {"run": id, "set": the run's label, "metrics": the run's metrics}."""
    now = {r.label: r for r in results}
    rows = []
    for label, origin in origins.items():
        saved = origin["metrics"]["points"][origin["set"]]
        for m in METRICS:
            value = now[label].report.overall[m].value
            before = saved.get(m, {}).get("value") if isinstance(saved.get(m), dict) else None
            rows.append({"set": label, "from": f"run {origin['run']}, set {origin['set']}", "metric": m,
                         "saved": before, "now": value,
                         "change": None if before is None else value - float(before)})
    return pd.DataFrame(rows, columns=["set", "from", "metric", "saved", "now", "change"])


def choose_questions(key: str):
    """The shipped MemoryBank set or an uploaded JSONL, validated; None (the reason shown) when
    there is none yet or it cannot be used. ``key`` prefixes the widgets' keys."""
    source = st.radio("Question set", ["MemoryBank (shipped, 100 questions)", "Upload a JSONL file"],
                      horizontal=True, key=f"{key}_source")
    try:
        if source.startswith("MemoryBank"):
            return load_questions(SHIPPED_QUESTIONS)
        upload = st.file_uploader("Questions (JSONL: question, asked_at, evidence; optional id, category, scope)",
                                  type=["jsonl"], key=f"{key}_upload")
        if upload is None:
            st.info("Upload a question set, or pick the shipped one.")
            return None
        lines = upload.getvalue().decode("utf-8", errors="strict").splitlines()
        return question_set([json.loads(x) for x in lines if x.strip()], upload.name)
    except (LatticeError, ValueError) as exc:
        st.error(f"The question set cannot be used: {exc}")
        return None
