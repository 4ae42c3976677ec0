"""Figures of the Cache & metrics page: resonance cache hit ratio, reflection latency, LLM provider
error rates and the lattice's mean coherence and R replayed from its log (the shared dark template)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.charts.theme import ACCENT, MUTED, WARM, finish, time_label


def cache_hit_ratio_chart(history: pd.DataFrame) -> go.Figure:
    """Cumulative hit ratio and size/evictions of the resonance cache, per lookup over wall time."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    top = 1
    if not history.empty:
        when = pd.to_datetime(history["time"], unit="s", utc=True)
        fig.add_trace(go.Scatter(x=when, y=history["hit_ratio"], name="hit ratio (cumulative)", mode="lines+markers",
                                 line=dict(color=ACCENT, shape="hv")), secondary_y=False)
        fig.add_trace(go.Scatter(x=when, y=history["size"], name="entries", mode="lines+markers",
                                 line=dict(color=MUTED, dash="dot", shape="hv")), secondary_y=True)
        fig.add_trace(go.Scatter(x=when, y=history["evictions"], name="evictions (cumulative)", mode="lines",
                                 line=dict(color=WARM, shape="hv")), secondary_y=True)
        top = int(max(history["size"].max(), history["evictions"].max(), 1))
        span = (when.max() - when.min()).total_seconds()
        if span < 60:  # a few lookups close together: show a readable minute around them
            mid = when.min() + (when.max() - when.min()) / 2
            fig.update_xaxes(range=[mid - pd.Timedelta(seconds=30), mid + pd.Timedelta(seconds=30)])
    fig.update_yaxes(title_text="hit ratio (0-1)", range=[0, 1.05], secondary_y=False)
    fig.update_yaxes(title_text="entries, evictions (count)", range=[0, top * 1.1], secondary_y=True,
                     showgrid=False, tickformat="d", dtick=max(1, int(np.ceil(top / 5))))
    fig.update_xaxes(title_text="wall time (UTC)", tickformat="%H:%M:%S")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.28, x=0))
    return finish(fig, "Resonance cache: hit ratio over time", 400,
                   subtitle="This server process, one point per lookup (hits / (hits + misses) so far)")


def latency_histogram(latency_s: np.ndarray, source: str) -> go.Figure:
    """Histogram of reflection latencies (seconds) with p50 and p95 marked."""
    x = np.asarray(latency_s, dtype=float)
    fig = go.Figure()
    ymax = 1
    if len(x):
        hi = max(float(x.max()) * 1.15, 1e-3)
        counts, edges = np.histogram(x, bins=min(40, max(10, len(x) // 2)), range=(0.0, hi))
        ymax = int(max(counts.max(), 1))
        fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), marker_color=ACCENT,
                             opacity=0.85, name="reflections",
                             hovertemplate="%{x:.3f} s: %{y} reflection(s)<extra></extra>"))
        for q, color, anchor, y in ((50, MUTED, "right", 1.0), (95, WARM, "left", 0.9)):
            v = float(np.percentile(x, q))
            fig.add_vline(x=v, line=dict(color=color, dash="dash"))
            fig.add_annotation(x=v, y=y, yref="paper", text=f"p{q} = {v:.3f} s", showarrow=False,
                               xanchor=anchor, font=dict(color=color), xshift=-4 if anchor == "right" else 4)
    fig.update_layout(xaxis_title="reflection latency (s)", yaxis_title="reflections (count)", bargap=0.05,
                      showlegend=False, xaxis=dict(rangemode="tozero"),
                      yaxis=dict(tickformat="d", dtick=max(1, int(np.ceil(ymax / 5))), range=[0, ymax * 1.15]))
    return finish(fig, f"Reflection latency ({len(x)} reflection{'s' if len(x) != 1 else ''})", 360,
                   subtitle=source)


def provider_error_chart(snapshot: dict) -> go.Figure:
    """Error rate per LLM provider (bars), with calls/errors and cooldown in the hover and labels."""
    names = list(snapshot)
    rates = [snapshot[n]["error_rate"] for n in names]
    text = [f"{snapshot[n]['errors']}/{snapshot[n]['calls']} failed"
            + (f" · cooling {snapshot[n]['cooldown_remaining_s']:.0f} s" if snapshot[n].get("cooling") else "")
            + ("" if snapshot[n].get("available") else " · unavailable") for n in names]
    colors = [WARM if snapshot[n].get("cooling") else (MUTED if not snapshot[n].get("available") else ACCENT)
              for n in names]
    fig = go.Figure(go.Bar(x=names, y=rates, text=text, textposition="outside", marker_color=colors,
                           hovertemplate="%{x}: error rate %{y:.0%}<br>%{text}<extra></extra>"))
    fig.update_layout(xaxis_title="provider (router order)", yaxis_title="error rate (failed / attempts)",
                      yaxis=dict(range=[0, 1.15], tickformat=".0%"), showlegend=False)
    return finish(fig, "LLM providers: error rate", 340,
                   subtitle="This server process; amber = cooling down, grey = unavailable (no key)")


HISTORY_AXES = {"lattice time": "lattice_t", "wall time": "wall_time", "log entry": "entry"}


def lattice_history_chart(frame: pd.DataFrame, time_unit: str, name: str, x_axis: str = "lattice time") -> go.Figure:
    """Mean coherence and R after each logged change, against lattice time, wall time or log entry."""
    col = HISTORY_AXES[x_axis]
    fig = go.Figure()
    d = frame.dropna(subset=["mean_coherence"])
    hover = [f"entry {e} ({k}) by {a}, lattice t = {t:.4g}"
             for e, k, a, t in zip(d["entry"], d["kind"], d["actor"], d["lattice_t"])]
    x = pd.to_datetime(d[col], utc=True) if col == "wall_time" else d[col]
    for y, label, color in (("mean_coherence", "mean coherence", ACCENT), ("R", "order parameter R", WARM)):
        fig.add_trace(go.Scatter(x=x, y=d[y], name=label, mode="lines+markers", text=hover, line=dict(color=color),
                                 hovertemplate=f"{label} = %{{y:.4f}}<br>%{{text}}<extra></extra>"))
    xtitle = {"lattice_t": time_label(time_unit), "wall_time": "wall time (UTC)", "entry": "log entry (id)"}[col]
    fig.update_layout(xaxis_title=xtitle, yaxis_title="mean coherence, R (0-1)",
                      yaxis=dict(range=[0, 1.02]), legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    fig = finish(fig, f"Lattice {name}: mean coherence and R over time", 400,
                  subtitle="Replayed from the transaction log: the state after each logged change<br>"
                           "(imports, advances, observations, edits); lines only connect the points")
    fig.update_layout(margin=dict(t=84))
    return fig
