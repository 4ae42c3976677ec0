"""Charts of the Evaluate page: metrics with intervals side by side, recall against half-life."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ui.charts.theme import finish

METRIC_LABELS = {"recall@5": "Recall@5", "recall@10": "Recall@10", "mrr": "MRR", "ndcg@10": "nDCG@10"}


def metrics_chart(table: pd.DataFrame, metrics: Sequence[str]) -> go.Figure:
    """Grouped bars, one group per metric, one bar per ranker, with 95% bootstrap intervals.

    ``table``: one row per ranker (``label``) with ``<metric>``, ``<metric>_low``, ``<metric>_high``.
    """
    fig = go.Figure()
    names = [METRIC_LABELS.get(m, m) for m in metrics]
    for _, row in table.iterrows():
        values = np.array([row[m] for m in metrics], dtype=float)
        fig.add_bar(name=str(row["label"]), x=names, y=values,
                    error_y=dict(type="data", symmetric=False,
                                 array=np.array([row[f"{m}_high"] for m in metrics], dtype=float) - values,
                                 arrayminus=values - np.array([row[f"{m}_low"] for m in metrics], dtype=float)),
                    hovertemplate="%{x}: %{y:.3f}<extra>" + str(row["label"]) + "</extra>")
    fig.update_layout(barmode="group", yaxis=dict(title="score (0 to 1)", range=[0, 1.05]),
                      legend=dict(orientation="h", y=-0.18))
    return finish(fig, "Retrieval quality", 420, "mean over the questions with evidence; bars: 95% bootstrap interval")


def half_life_curve(curves: dict[str, pd.DataFrame], metric: str, time_unit: str,
                    marks: dict[str, float] | None = None) -> go.Figure:
    """``metric`` against the half-life at E = 1 (log axis), one line per parameter set, with
    its interval as a band and its own half-life marked."""
    fig = go.Figure()
    for label, df in curves.items():
        x = df["half_life"].to_numpy(dtype=float)
        fig.add_scatter(x=np.concatenate([x, x[::-1]]),
                        y=np.concatenate([df[f"{metric}_high"], df[f"{metric}_low"][::-1]]),
                        fill="toself", line=dict(width=0), opacity=0.18, showlegend=False, hoverinfo="skip",
                        name=f"{label} interval")
        fig.add_scatter(x=x, y=df[metric], mode="lines+markers", name=label, customdata=df["half_life_text"],
                        hovertemplate="half-life %{customdata}: %{y:.3f}<extra>" + label + "</extra>")
        best = int(np.nanargmax(df[metric].to_numpy(dtype=float)))
        fig.add_scatter(x=[x[best]], y=[df[metric].iloc[best]], mode="markers", showlegend=False,
                        marker=dict(symbol="star", size=14, line=dict(width=1, color="white")),
                        hovertemplate=f"best for {label}: " + "%{y:.3f}<extra></extra>")
    for label, value in (marks or {}).items():
        if np.isfinite(value) and value > 0:  # a trace, not a shape: shapes on a log axis take log10 units
            fig.add_scatter(x=[value, value], y=[0.0, 0.95], mode="lines+text", text=["", label],
                            textposition="top center", line=dict(dash="dot", width=1, color="#9aa4c0"),
                            showlegend=False, hoverinfo="skip")
    fig.update_layout(xaxis=dict(title=f"half-life at energy 1 ({time_unit}s, log scale)", type="log"),
                      yaxis=dict(title=METRIC_LABELS.get(metric, metric), range=[0, 1.05]),
                      legend=dict(orientation="h", y=-0.2))
    return finish(fig, f"{METRIC_LABELS.get(metric, metric)} against the half-life", 420,
                  "each parameter set's scoring rule, its decay varied; ★ best point; dotted: the set's own half-life")
