"""How one reflection is shown: the answer with its citations, the ranked gems with every
term of the lattice's scoring rule (product, floor or weighted), the provider trace, and the
state change it caused; when nothing resonated, why (Reflection page)."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.access import PermissionDenied
from core.errors import LatticeError
from core.knowledge import RULE_FORMULAS, W_DATE, W_LEXICAL
from core.reflection import RateLimitExceeded
from ui.charts.theme import ACCENT, WARM, finish
from ui.text import safe_markdown

_CITATION = re.compile(r"\[([A-Za-z0-9_.:@/-]+)\]")


LATTICE_PAGE = "lattice"  # url_path of the Lattice page (ui.navigation): ?gem=<id> opens that gem


def gem_url(gem_id: str) -> str:
    """A link to the Lattice page with gem ``gem_id`` open."""
    return f"{LATTICE_PAGE}?gem={quote(str(gem_id), safe='')}"


def with_citations(answer: str) -> str:
    """The answer safe to render (no remote images, no HTML: ``ui.text.safe_markdown``), its
    citations ``[gem-id]`` as links that open the gem on the Lattice page."""
    return _CITATION.sub(lambda m: f"[`[{m.group(1)}]`]({gem_url(m.group(1))})", safe_markdown(answer))


def stream_answer(chunks) -> str:
    """Show a streamed answer as it arrives, made safe like the finished one (``with_citations``)."""
    box, text = st.empty(), ""
    for chunk in chunks:
        text += str(chunk)
        box.markdown(with_citations(text))
    return text


def error_turn(question: str, exc: Exception) -> dict[str, Any]:
    """A history entry for a refused or failed reflection (shown as warning or error)."""
    if isinstance(exc, RateLimitExceeded):
        return {"question": question, "kind": "warning", "message": f"Slow down: {exc}. Nothing was changed."}
    if isinstance(exc, PermissionDenied):
        return {"question": question, "kind": "error", "message": f"Not allowed: {exc}."}
    if isinstance(exc, LatticeError):
        return {"question": question, "kind": "error", "message": f"No answer: {exc}"}
    return {"question": question, "kind": "error",
            "message": f"No answer: an unexpected {type(exc).__name__} ({exc}); nothing was changed."}


KEPT = "kept: most similar"
RULE_SCORE_LABEL = {"product": "Resonance s·c^α", "floor": "Resonance s·(φ + (1 − φ)·c^α)",
                    "weighted": "Weighted score"}
# the terms each rule shows, in order: (record key, column label)
_TERMS = {
    "product": [("similarity", "Similarity s"), ("coherence", "Coherence c"),
                ("coherence_factor", "Coherence factor c^α")],
    "floor": [("similarity", "Similarity s"), ("coherence", "Coherence c"),
              ("coherence_factor", "Coherence factor c^α"), ("floor", "Floor φ")],
    "weighted": [("similarity", "Similarity s"), ("relevance", "Relevance"), ("coherence", "Coherence c"),
                 ("recency", "Recency"), ("importance", "Importance")],
}
# the hybrid retriever's terms, shown after the similarity (core.knowledge.hybrid; the rule reads "fused")
HYBRID_TERMS = [("bm25", "BM25 (normalised)"), ("date_match", "Date match"), ("fused", "Fused")]
TEXT_COLUMNS = ("rank", "gem", "title", "Kept", "In prompt", "Why not")


def retriever_of(record: dict) -> str:
    """The retriever a record was ranked with: ``hybrid`` when its gems carry the fused score."""
    gems = record.get("gems") or [{}]
    return "hybrid" if "fused" in gems[0] else "similarity"


def scoring_of(record: dict) -> str:
    """The scoring rule a record was ranked with (older records, before the rules: product)."""
    rule = (record.get("ranking") or {}).get("scoring")
    if rule in _TERMS:
        return rule
    gems = record.get("gems") or [{}]
    return "floor" if "floor" in gems[0] else "weighted" if "relevance" in gems[0] else "product"


def ranked_frame(record: dict, titles: dict) -> pd.DataFrame:
    """One row per ranked gem: the rule's terms with human labels, the score, and whether the
    gem went into the prompt (and why not)."""
    rule = scoring_of(record)
    terms = list(_TERMS[rule])
    if retriever_of(record) == "hybrid":
        at = 1 + next(i for i, (key, _) in enumerate(terms) if key == "similarity")
        terms[at:at] = HYBRID_TERMS
    rows = []
    for g in record.get("gems", []):
        row = {"rank": g["rank"], "gem": g["gem_id"], "title": titles.get(g["gem_id"], "")}
        row.update({label: g.get(key) for key, label in terms})
        row.update({RULE_SCORE_LABEL[rule]: g["resonance"], "Interference": g["interference"], "Score": g["score"],
                    "Uncertainty": g["uncertainty"]})
        if rule != "product":
            row["Kept"] = KEPT if g.get("kept_as_most_similar") else ""
        row.update({"In prompt": bool(g.get("included")), "Why not": g.get("skip_reason", "")})
        rows.append(row)
    return pd.DataFrame(rows)


def trace_frame(record: dict) -> pd.DataFrame:
    cols = ["provider", "model", "attempt", "outcome", "detail", "latency_s", "first_token_s", "status_code",
            "input_tokens", "output_tokens"]
    df = pd.DataFrame(record.get("trace", []))
    return df.reindex(columns=cols).rename(columns={"latency_s": "latency (s)", "first_token_s": "first token (s)"})


def state_frame(record: dict, titles: dict) -> pd.DataFrame:
    obs = record.get("observation") or {}
    if not obs.get("gems"):
        return pd.DataFrame(columns=["gem", "title", "strength", "coherence before", "coherence after", "Δ coherence",
                                     "uncertainty before", "uncertainty after"])
    df = pd.DataFrame({"gem": obs["gems"], "strength": obs["strength"],
                       "coherence before": obs["coherence_before"], "coherence after": obs["coherence_after"],
                       "uncertainty before": obs["uncertainty_before"], "uncertainty after": obs["uncertainty_after"]})
    df.insert(1, "title", df["gem"].map(lambda g: titles.get(g, "")))
    df.insert(5, "Δ coherence", df["coherence after"] - df["coherence before"])
    return df


def score_chart(ranked: pd.DataFrame, rule: str = "product") -> go.Figure:
    """Stacked bars: each ranked gem's score as the rule's score + the interference term
    (a gem kept as the most similar one is marked in its label)."""
    d = ranked.iloc[::-1]
    kept = d["Kept"] if "Kept" in d else pd.Series([""] * len(d), index=d.index)
    labels = [f"{r}. {g}" + (" (kept: most similar)" if k else "") for r, g, k in zip(d["rank"], d["gem"], kept)]
    name = RULE_SCORE_LABEL[rule]
    fig = go.Figure([
        go.Bar(y=labels, x=d[name], orientation="h", name=name, marker_color=ACCENT),
        go.Bar(y=labels, x=d["Interference"], orientation="h", name="Interference", marker_color=WARM),
    ])
    fig.update_layout(barmode="relative", xaxis_title="score (dimensionless)", yaxis_title=None,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"))
    fig = finish(fig, f"Score of each ranked gem = {name} + interference", 110 + 30 * len(d))
    fig.update_layout(margin=dict(l=10, r=20, t=70, b=50))
    return fig


def empty_reason(record: dict) -> str:
    """Why a record's ranking is empty (its stored explanation; older records: a generic line)."""
    return (record.get("ranking") or {}).get("explanation") or "No gem reached the minimum score."


def render_details(record: dict, titles: dict, key: str) -> None:
    rule = scoring_of(record)
    ranked = ranked_frame(record, titles)
    trace = trace_frame(record)
    state = state_frame(record, titles)
    edges = record.get("new_edges") or []
    t1, t2, t3 = st.tabs([f"Ranked gems ({len(ranked)})", f"Provider trace ({len(trace)})",
                          f"State change ({len(state)} gems, {len(edges)} links)"])
    with t1:
        if ranked.empty:
            st.caption(safe_markdown(empty_reason(record)))
        else:
            kept = "" if rule == "product" else (
                f" *{KEPT}*: the most similar gem took the last slot, which its score alone would not have won "
                "(age never drops it under this rule).")
            hybrid = (f" **Hybrid retriever**: the rule reads s = *Fused* = {1 - W_LEXICAL:g}·similarity + "
                      f"{W_LEXICAL:g}·BM25 (normalised) and, when the question names a date, {1 - W_DATE:g} of that + "
                      f"{W_DATE:g}·*Date match* (1: the gem was created that day)."
                      if retriever_of(record) == "hybrid" else "")
            st.caption(f"Scoring rule **{rule}**: {RULE_FORMULAS[rule]}. s = cosine similarity ≥ 0, c = coherence; "
                       "the interference term is β·ΣI/k of the re-ranking (0 when β = 0). *In prompt*: the gem was "
                       f"given to the LLM.{kept}{hybrid}")
            st.dataframe(ranked, hide_index=True, key=f"{key}_ranked", column_config={
                c: st.column_config.NumberColumn(format="%.4f") for c in ranked.columns if c not in TEXT_COLUMNS})
            st.plotly_chart(score_chart(ranked, rule), key=f"{key}_scores")
    with t2:
        if trace.empty:
            st.caption("No LLM was called (nothing resonated).")
        else:
            st.caption("Every attempt in router order: skipped (no key, cooling down), failed (with the "
                       "error), retried, or ok. Latencies in seconds.")
            st.dataframe(trace, hide_index=True, key=f"{key}_trace")
    with t3:
        if state.empty:
            st.caption("The lattice was not changed (nothing resonated, or the answer was interrupted).")
        else:
            st.caption("Observed gems re-cohere (c ← c + η·(1 − c)); entangled partners by ρ·w. Gems used "
                       "together become entangled (or their link grows).")
            st.dataframe(state, hide_index=True, key=f"{key}_state", column_config={
                c: st.column_config.NumberColumn(format="%.4f") for c in state.columns if c not in ("gem", "title")})
            if edges:
                st.markdown(f"**{len(edges)} entanglement(s) created or strengthened**")
                st.dataframe(pd.DataFrame(edges, columns=["gem a", "gem b", "new weight"]), hide_index=True,
                             key=f"{key}_edges")


def summary_line(record: dict) -> str:
    tokens = record.get("tokens") or {}
    parts = [f"{record.get('provider') or 'no LLM'}" + (f" · {record['model']}" if record.get("model") else ""),
             f"{record.get('latency_s', 0):.2f} s",
             f"{tokens.get('prompt', 0)} prompt + {tokens.get('completion', 0)} answer tokens"
             + ("" if tokens.get("exact") else " (estimated)")]
    return " · ".join(parts)


def render_answer(record: dict) -> None:
    """The answer (or the clear 'nothing resonates' / 'interrupted' notice)."""
    if record.get("nothing_resonated"):
        st.warning(safe_markdown(record["answer"]), icon=":material/search_off:")
        return
    st.markdown(with_citations(record["answer"]))
    if record.get("interrupted"):
        st.warning("The answer was interrupted; the lattice was not reinforced.")
