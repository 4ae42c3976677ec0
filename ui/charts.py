"""Plotly figure builders for the workbench: pure functions, no streamlit.

Every builder takes plain arrays/DataFrames and returns a ``go.Figure`` with labelled
axes (time in the lattice time unit, phase in degrees, coherence/uncertainty/R on
[0, 1]) and the shared ``"lattice"`` template, so charts look the same on every page
and can be unit-tested without a browser. Heatmaps are float32 and at most
``MAX_HEATMAP_SIDE`` x ``MAX_HEATMAP_SIDE`` cells; larger selections are
block-averaged and the title says so.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

MAX_HEATMAP_SIDE = 1000
DRAWN_HEATMAP_SIDE = 400  # the pages' cap: the heatmap's plot area is ~450 px, so more cells would not show

# ------------------------------------------------------------------ theme
BG = "#0b1020"
PANEL = "#111831"
GRID = "#243055"
TEXT = "#e6e9f2"
MUTED = "#9aa4c0"
ACCENT = "#5eead4"  # teal: the primary colour of .streamlit/config.toml
WARM = "#fbbf24"
COLORWAY = ["#5eead4", "#fbbf24", "#a78bfa", "#f472b6", "#60a5fa", "#34d399", "#fb923c",
            "#e879f9", "#94a3b8", "#facc15"]
DIVERGING = [[0.0, "#3b82f6"], [0.5, "#111831"], [1.0, "#f59e0b"]]  # destructive -> constructive
SEQUENTIAL = "Viridis"

_template = go.layout.Template(pio.templates["plotly_dark"])
_template.layout.update(
    paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor=PANEL, colorway=COLORWAY,
    font=dict(family="Inter, Segoe UI, Helvetica, Arial, sans-serif", size=13, color=TEXT),
    title=dict(font=dict(size=15, color=TEXT), x=0.0, xanchor="left"),
    xaxis=dict(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID, title=dict(font=dict(color=MUTED))),
    yaxis=dict(gridcolor=GRID, zerolinecolor=GRID, linecolor=GRID, title=dict(font=dict(color=MUTED))),
    polar=dict(bgcolor=PANEL, angularaxis=dict(gridcolor=GRID, linecolor=GRID),
               radialaxis=dict(gridcolor=GRID, linecolor=GRID)),
    legend=dict(bgcolor="rgba(0,0,0,0)", font=dict(size=12)),
    margin=dict(l=60, r=20, t=56, b=50),
    hoverlabel=dict(font=dict(size=12)),
)
pio.templates["lattice"] = _template
TEMPLATE = "lattice"


def time_label(time_unit: str = "hour") -> str:
    """Axis title for lattice time, e.g. ``time (hours)``."""
    return f"time ({time_unit}s)"


def _finish(fig: go.Figure, title: str, height: int = 380, subtitle: str | None = None) -> go.Figure:
    layout_title = dict(text=title)
    if subtitle:
        layout_title["subtitle"] = dict(text=subtitle, font=dict(size=12, color=MUTED))
    fig.update_layout(template=TEMPLATE, title=layout_title, height=height)
    if subtitle:
        fig.update_layout(margin=dict(t=76))
    return fig


def _time_marker(fig: go.Figure, current_time: float | None, time_unit: str) -> None:
    if current_time is not None:
        fig.add_vline(x=float(current_time), line=dict(color=WARM, width=1.5, dash="dot"),
                      annotation_text=f"t = {current_time:.3g}", annotation_font_color=WARM,
                      annotation_position="top right")


def _short(text: str, n: int = 32) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


# ----------------------------------------------------------- time series
def _band(fig: go.Figure, t, lo, hi, name: str, opacity: float = 0.18, color: str = ACCENT) -> None:
    rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    fig.add_trace(go.Scatter(x=t, y=hi, mode="lines", line=dict(width=0), showlegend=False,
                             hoverinfo="skip", legendgroup=name))
    fig.add_trace(go.Scatter(x=t, y=lo, mode="lines", line=dict(width=0), fill="tonexty",
                             fillcolor=f"rgba{rgb + (opacity,)}", name=name, legendgroup=name,
                             hoverinfo="skip"))


def coherence_over_time(series: pd.DataFrame, gems: pd.DataFrame | None = None,
                        titles: Mapping | None = None, chosen: Sequence | None = None,
                        time_unit: str = "hour", current_time: float | None = None) -> go.Figure:
    """All gems as a 5-95 % and 25-75 % percentile band with the median; chosen gems as lines.

    series : ``Trajectory.series`` (time, c_p5 .. c_p95).
    gems : ``Trajectory.gems`` (tidy time, gem, coherence); chosen gem ids drawn as lines.
    """
    fig = go.Figure()
    t = series["time"]
    _band(fig, t, series["c_p5"], series["c_p95"], "all gems, 5-95 %", 0.14)
    _band(fig, t, series["c_p25"], series["c_p75"], "all gems, 25-75 %", 0.26)
    fig.add_trace(go.Scatter(x=t, y=series["c_p50"], mode="lines", name="median",
                             line=dict(color=ACCENT, width=2, dash="dash")))
    if gems is not None and chosen:
        for k, gid in enumerate(chosen):
            g = gems[gems["gem"] == gid]
            if g.empty:
                continue
            label = _short((titles or {}).get(gid, gid))
            fig.add_trace(go.Scatter(x=g["time"], y=g["coherence"], mode="lines", name=label,
                                     line=dict(width=2, color=COLORWAY[(k + 1) % len(COLORWAY)])))
    _time_marker(fig, current_time, time_unit)
    fig.update_xaxes(title_text=time_label(time_unit))
    fig.update_yaxes(title_text="coherence c (0-1)", range=[0, 1.02])
    return _finish(fig, "Coherence over time")


def uncertainty_over_time(series: pd.DataFrame, gems: pd.DataFrame | None = None,
                          titles: Mapping | None = None, chosen: Sequence | None = None,
                          time_unit: str = "hour", current_time: float | None = None) -> go.Figure:
    """Mean uncertainty of all gems, and the chosen gems' own uncertainty."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=series["time"], y=series["mean_uncertainty"], mode="lines",
                             name="mean (all gems)", line=dict(color=ACCENT, width=2.5)))
    if gems is not None and chosen:
        for k, gid in enumerate(chosen):
            g = gems[gems["gem"] == gid]
            if g.empty:
                continue
            fig.add_trace(go.Scatter(x=g["time"], y=g["uncertainty"], mode="lines",
                                     name=_short((titles or {}).get(gid, gid)),
                                     line=dict(width=1.5, color=COLORWAY[(k + 1) % len(COLORWAY)])))
    _time_marker(fig, current_time, time_unit)
    fig.update_xaxes(title_text=time_label(time_unit))
    fig.update_yaxes(title_text="uncertainty u (0-1)", range=[0, 1.02])
    return _finish(fig, "Uncertainty over time")


def order_parameter_over_time(series: pd.DataFrame, time_unit: str = "hour",
                              current_time: float | None = None) -> go.Figure:
    """R(t) on the left axis (0-1) and psi(t) in degrees on the right axis."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=series["time"], y=series["R"], mode="lines", name="R (order parameter)",
                             line=dict(color=ACCENT, width=2.5)))
    psi = np.degrees(np.asarray(series["psi"], dtype=float))
    psi[1:][np.abs(np.diff(psi)) > 180] = np.nan  # break the line where psi wraps at ±180°
    fig.add_trace(go.Scatter(x=series["time"], y=psi, mode="markers", name="ψ (mean phase, °)", yaxis="y2",
                             marker=dict(color=WARM, size=3, opacity=0.6)))
    _time_marker(fig, current_time, time_unit)
    r_max = float(np.nanmax(series["R"])) if len(series) else 1.0
    fig.update_layout(
        xaxis=dict(title=dict(text=time_label(time_unit))),
        yaxis=dict(title=dict(text="R (0-1)"), range=[0, max(0.05, min(1.0, r_max * 1.15))]),
        yaxis2=dict(title=dict(text="ψ (degrees)"), overlaying="y", side="right", range=[-180, 180],
                    showgrid=False, tickvals=[-180, -90, 0, 90, 180]),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
    )
    return _finish(fig, "Order parameter R(t) and mean phase ψ(t)")


def phasor_polar(phase: np.ndarray, coherence: np.ndarray, labels: Sequence[str],
                 highlight: Sequence[int] | None = None, order_parameter: complex | None = None,
                 title: str = "Gem phasors") -> go.Figure:
    """Polar plot: angle = phase (degrees), radius = coherence; the mean phasor as an arrow."""
    phase = np.asarray(phase, dtype=float)
    deg = np.degrees(np.mod(phase, 2 * np.pi))
    coh = np.asarray(coherence, dtype=float)
    labels = [str(x) for x in labels]
    fig = go.Figure()
    fig.add_trace(go.Scatterpolar(
        theta=deg, r=coh, mode="markers", name="gems",
        marker=dict(size=8, color=coh, colorscale=SEQUENTIAL, cmin=0, cmax=1, opacity=0.85,
                    line=dict(width=0.5, color=BG),
                    colorbar=dict(title=dict(text="c"), thickness=10, len=0.6, x=1.08)),
        text=labels, hovertemplate="%{text}<br>phase %{theta:.0f}°<br>coherence %{r:.3f}<extra></extra>"))
    if highlight:
        h = np.asarray(list(highlight), dtype=int)
        fig.add_trace(go.Scatterpolar(
            theta=deg[h], r=coh[h], mode="markers+text", name="chosen gems",
            marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(width=2, color=WARM)),
            text=[_short(labels[i], 18) for i in h], textposition="top center",
            textfont=dict(size=10, color=WARM),
            hovertemplate="%{text}<br>phase %{theta:.0f}°<br>coherence %{r:.3f}<extra></extra>"))
    if order_parameter is not None:
        z = complex(order_parameter)
        fig.add_trace(go.Scatterpolar(theta=[0, np.degrees(np.angle(z)) % 360], r=[0, abs(z)],
                                      mode="lines+markers", name=f"R e^iψ (R = {abs(z):.3f})",
                                      line=dict(color="#f472b6", width=3), marker=dict(size=[0, 9])))
    fig.update_layout(polar=dict(
        radialaxis=dict(range=[0, 1.05], tickvals=[0.25, 0.5, 0.75, 1.0], angle=0, tickfont=dict(size=10)),
        angularaxis=dict(direction="counterclockwise", rotation=0, ticksuffix="°", dtick=45)),
        legend=dict(orientation="h", y=-0.08))
    return _finish(fig, title, height=460, subtitle="angle = phase (degrees), radius = coherence (0-1)")


# ------------------------------------------------------------ interference
def interference_view(coherence: np.ndarray, phase: np.ndarray, indices: Sequence[int],
                      max_side: int = MAX_HEATMAP_SIDE) -> tuple[np.ndarray, np.ndarray, int]:
    """Interference of the gems ``indices``, ordered by wrapped phase, as float32.

    Returns ``(matrix, order, block)``: ``order`` are the gem indices in phase order and
    ``block`` the number of consecutive gems averaged per cell (1 = exact). The block
    mean of a rank-2 matrix ``a a^T + b b^T`` is the rank-2 matrix of block means of
    ``a = c cos phi`` and ``b = c sin phi``, so even a large selection never
    materialises more than ``max_side`` x ``max_side`` cells.
    """
    idx = np.asarray(list(indices), dtype=np.int64)
    wrapped = np.mod(np.asarray(phase, dtype=float)[idx], 2 * np.pi)
    order = idx[np.argsort(wrapped, kind="stable")]
    c = np.asarray(coherence, dtype=float)[order]
    p = np.asarray(phase, dtype=float)[order]
    comp = np.column_stack((c * np.cos(p), c * np.sin(p)))
    block = max(1, int(np.ceil(len(order) / max_side)))
    if block > 1:
        n_blocks = int(np.ceil(len(order) / block))
        groups = np.arange(len(order)) // block
        sums = np.zeros((n_blocks, 2))
        np.add.at(sums, groups, comp)
        comp = sums / np.bincount(groups, minlength=n_blocks)[:, None]
    comp = comp.astype(np.float32)
    return comp @ comp.T, order, block


def interference_heatmap(matrix: np.ndarray, labels: Sequence[str], phases_deg: Sequence[float] | None = None,
                         block: int = 1, total: int | None = None) -> go.Figure:
    """Heatmap of ``I_ij = cos(phi_i - phi_j) c_i c_j`` (gems ordered by phase)."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.shape[0] > MAX_HEATMAP_SIDE:
        raise ValueError(f"heatmap side {m.shape[0]} exceeds {MAX_HEATMAP_SIDE}; aggregate first")
    n = m.shape[0]
    axis: list = list(range(n))
    labels = [str(x) for x in labels]
    named = block == 1 and len(labels) == n
    if named:
        # Hover names travel once per row/column (category axes), not once per cell: n labels, not n² strings.
        ph = list(phases_deg) if phases_deg is not None else [None] * n
        axis, used = [], set()
        for lab, p in zip(labels, ph):
            base = name = _short(lab, 40) + (f" ({p:.0f}°)" if p is not None else "")
            k = 1
            while name in used:  # category names must be unique
                k += 1
                name = f"{base} [{k}]"
            used.add(name)
            axis.append(name)
    lim = float(np.abs(m).max()) if m.size else 1.0
    fig = go.Figure(go.Heatmap(
        z=m, x=axis, y=axis, zmin=-lim, zmax=lim, colorscale=DIVERGING, zmid=0,
        hovertemplate=("%{y}<br>× %{x}<br>I = %{z:.3f}<extra></extra>" if named
                       else "row %{y}, col %{x}<br>mean I = %{z:.3f}<extra></extra>"),
        colorbar=dict(title=dict(text="I_ij"), thickness=12)))
    what = f"{total if total is not None else n} gems ordered by phase"
    title = f"Interference I_ij = cos(φi−φj)·ci·cj of {what}"
    subtitle = "orange: in phase (reinforce) · blue: opposed (cancel)"
    if block > 1:
        subtitle = f"block-averaged: each cell is the mean over {block}×{block} gem pairs · " + subtitle
    tick_step = max(1, n // 8)
    ticks = list(range(0, n, tick_step))
    if phases_deg is not None and block == 1:
        ticktext = [f"{float(phases_deg[i]):.0f}°" for i in ticks]
    else:
        ticktext = [str(i * block) for i in ticks]
    if named:
        ticks = [axis[i] for i in ticks]
    axis_type = "category" if named else "linear"
    axis_title = "gems by phase (phase in degrees)" if block == 1 else "gem rank by phase"
    fig.update_xaxes(title_text=axis_title, tickvals=ticks, ticktext=ticktext, showgrid=False, showline=False,
                     zeroline=False, type=axis_type)
    fig.update_yaxes(title_text=axis_title, tickvals=ticks, ticktext=ticktext, autorange="reversed", type=axis_type,
                     showgrid=False, showline=False, zeroline=False, scaleanchor="x")
    return _finish(fig, title, height=580, subtitle=subtitle)


def entanglement_network(phase: np.ndarray, coherence: np.ndarray, labels: Sequence[str],
                         edges: tuple[np.ndarray, np.ndarray, np.ndarray],
                         max_edges: int = 2000) -> go.Figure:
    """Entangled gems on a circle at their phase angle; line width/opacity = weight.

    Gems in phase sit together, so clusters of entangled, aligned gems are visible at a
    glance; colour = coherence. Only gems with at least one edge are drawn.
    """
    ei, ej, w = (np.asarray(x) for x in edges)
    if len(w) > max_edges:
        keep = np.argsort(-w)[:max_edges]
        ei, ej, w = ei[keep], ej[keep], w[keep]
    fig = go.Figure()
    if len(w) == 0:
        fig.add_annotation(text="no entanglements in this lattice", showarrow=False, font=dict(color=MUTED))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _finish(fig, "Entanglement network", height=520)
    ang = np.mod(np.asarray(phase, dtype=float), 2 * np.pi)
    coh = np.asarray(coherence, dtype=float)
    radius = 0.35 + 0.65 * coh  # more coherent gems sit further out: the phasor picture
    x, y = (radius * np.cos(ang)).astype(np.float32), (radius * np.sin(ang)).astype(np.float32)  # screen precision
    # Edges grouped into 4 weight bands (one trace each) to keep the figure light.
    bands = np.digitize(w, [0.25, 0.5, 0.75])
    for band in range(4):
        sel = bands == band
        if not sel.any():
            continue
        gap = np.full(sel.sum(), np.nan, dtype=np.float32)  # breaks the line between two links
        xs = np.column_stack((x[ei[sel]], x[ej[sel]], gap)).ravel()
        ys = np.column_stack((y[ei[sel]], y[ej[sel]], gap)).ravel()
        lo, hi = [0, 0.25, 0.5, 0.75, 1.0][band], [0, 0.25, 0.5, 0.75, 1.0][band + 1]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip",
                                 name=f"weight {lo:.2f}-{hi:.2f}",
                                 line=dict(width=0.8 + 2.2 * band / 3, color=f"rgba(167,139,250,{0.25 + 0.2 * band})")))
    nodes = np.unique(np.concatenate((ei, ej)))
    deg = np.bincount(np.concatenate((ei, ej)), minlength=len(coh))
    labels = [str(s) for s in labels]
    fig.add_trace(go.Scatter(
        x=x[nodes], y=y[nodes], mode="markers", name="gems",
        marker=dict(size=(7 + 2.5 * np.sqrt(deg[nodes])).astype(np.float32), color=coh[nodes].astype(np.float32),
                    colorscale=SEQUENTIAL, cmin=0, cmax=1,
                    line=dict(width=0.6, color=BG), colorbar=dict(title=dict(text="c"), thickness=10)),
        text=[labels[i] for i in nodes],
        customdata=np.column_stack((np.degrees(ang[nodes]), coh[nodes], deg[nodes])).astype(np.float32),
        hovertemplate="%{text}<br>phase %{customdata[0]:.0f}°, c = %{customdata[1]:.3f}, "
                      "%{customdata[2]:.0f} link(s)<extra></extra>"))
    ring = np.linspace(0, 2 * np.pi, 181)
    fig.add_trace(go.Scatter(x=np.cos(ring), y=np.sin(ring), mode="lines", hoverinfo="skip", showlegend=False,
                             line=dict(color=GRID, width=1, dash="dot")))
    for deg_mark in range(0, 360, 90):
        a = np.radians(deg_mark)
        fig.add_annotation(x=1.12 * np.cos(a), y=1.12 * np.sin(a), text=f"{deg_mark}°", showarrow=False,
                           font=dict(color=MUTED, size=11))
    fig.update_xaxes(visible=False, range=[-1.25, 1.25])
    fig.update_yaxes(visible=False, range=[-1.25, 1.25], scaleanchor="x")
    fig.update_layout(legend=dict(orientation="h", y=-0.05))
    return _finish(fig, f"Entanglement network: {len(nodes)} gems, {len(w)} links", height=580,
                   subtitle="angle = phase (degrees), distance from centre = coherence; colour = coherence")


# ------------------------------------------------------------- experiments
def preview_chart(current: pd.DataFrame, baseline: pd.DataFrame | None = None,
                  time_unit: str = "hour") -> go.Figure:
    """Mean coherence, 5-95 % band and R under the current parameters (vs. the defaults)."""
    fig = go.Figure()
    t = current["time"]
    _band(fig, t, current["c_p5"], current["c_p95"], "coherence 5-95 % (current)", 0.16)
    fig.add_trace(go.Scatter(x=t, y=current["mean_coherence"], mode="lines", name="mean coherence (current)",
                             line=dict(color=ACCENT, width=2.5)))
    fig.add_trace(go.Scatter(x=t, y=current["R"], mode="lines", name="R (current)",
                             line=dict(color=WARM, width=2)))
    if baseline is not None:
        fig.add_trace(go.Scatter(x=baseline["time"], y=baseline["mean_coherence"], mode="lines",
                                 name="mean coherence (defaults)", line=dict(color=MUTED, width=1.5, dash="dash")))
        fig.add_trace(go.Scatter(x=baseline["time"], y=baseline["R"], mode="lines", name="R (defaults)",
                                 line=dict(color=MUTED, width=1.5, dash="dot")))
    fig.update_xaxes(title_text=time_label(time_unit))
    fig.update_yaxes(title_text="coherence / R (0-1)", range=[0, 1.02])
    fig.update_layout(legend=dict(orientation="h", y=-0.2))
    return _finish(fig, "Preview: the lattice under the current parameters", height=400)


def compare_runs_chart(runs: Sequence[tuple[str, pd.DataFrame]], time_unit: str = "hour") -> go.Figure:
    """Mean coherence (solid) and R (dotted) of saved runs, one colour per run."""
    fig = go.Figure()
    for k, (name, series) in enumerate(runs):
        color = COLORWAY[k % len(COLORWAY)]
        fig.add_trace(go.Scatter(x=series["time"], y=series["mean_coherence"], mode="lines", legendgroup=name,
                                 name=f"{name}: mean coherence", line=dict(color=color, width=2.5)))
        fig.add_trace(go.Scatter(x=series["time"], y=series["R"], mode="lines", legendgroup=name,
                                 name=f"{name}: R", line=dict(color=color, width=1.5, dash="dot")))
    fig.update_xaxes(title_text=time_label(time_unit) + " from the lattice clock at save time")
    fig.update_yaxes(title_text="coherence / R (0-1)", range=[0, 1.02])
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return _finish(fig, f"Saved runs compared ({len(runs)})", height=420,
                   subtitle="solid: mean coherence · dotted: order parameter R")


def sweep_chart(results: pd.DataFrame, params: Sequence[str], metric: str, metric_label: str,
                param_labels: Mapping[str, str] | None = None) -> go.Figure:
    """A line (one swept parameter) or a heatmap (two) of ``metric``."""
    labels = dict(param_labels or {})
    params = list(params)
    if len(params) == 1:
        p = params[0]
        df = results.sort_values(p)
        fig = go.Figure(go.Scatter(x=df[p], y=df[metric], mode="lines+markers", name=metric_label,
                                   line=dict(color=ACCENT, width=2.5), marker=dict(size=7)))
        fig.update_xaxes(title_text=labels.get(p, p))
        fig.update_yaxes(title_text=metric_label)
        return _finish(fig, f"Sweep of {labels.get(p, p)}: {metric_label}")
    px_, py_ = params
    pivot = results.pivot_table(index=py_, columns=px_, values=metric, aggfunc="mean")
    fig = go.Figure(go.Heatmap(z=pivot.to_numpy(dtype=np.float32), x=pivot.columns.to_numpy(),
                               y=pivot.index.to_numpy(), colorscale=SEQUENTIAL,
                               colorbar=dict(title=dict(text=metric), thickness=12),
                               hovertemplate=f"{px_} = %{{x:.3g}}<br>{py_} = %{{y:.3g}}<br>"
                                             f"{metric} = %{{z:.4f}}<extra></extra>"))
    fig.update_xaxes(title_text=labels.get(px_, px_))
    fig.update_yaxes(title_text=labels.get(py_, py_))
    return _finish(fig, f"Sweep: {metric_label}", height=460)


def decay_fit_chart(t: np.ndarray, coherence: np.ndarray, groups: Sequence | None, fit,
                    time_unit: str = "hour") -> go.Figure:
    """Observations (markers) and the fitted ``A exp(-(t - t0)/tau) + C`` curve(s)."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(coherence, dtype=float)
    fig = go.Figure()
    keys = list(fit.curve)
    g = np.asarray(groups, dtype=object).astype(str) if groups is not None else None
    for k, key in enumerate(keys):
        color = COLORWAY[k % len(COLORWAY)]
        sel = (g == str(key)) if (g is not None and key is not None) else np.ones_like(t, dtype=bool)
        name = "observations" if key is None else f"{_short(key, 24)}"
        fig.add_trace(go.Scatter(x=t[sel], y=y[sel], mode="markers", name=name,
                                 marker=dict(size=7, color=color, opacity=0.8), legendgroup=str(key)))
        fig.add_trace(go.Scatter(x=fit.curve_t, y=fit.curve[key], mode="lines",
                                 name="fit" if key is None else f"fit {_short(key, 20)}",
                                 line=dict(color=color, width=2.5), legendgroup=str(key)))
    fig.update_xaxes(title_text=time_label(time_unit))
    fig.update_yaxes(title_text="coherence c (0-1)")
    se = f" ± {fit.tau_se:.3g}" if np.isfinite(fit.tau_se) else ""
    return _finish(fig, f"Decay fit: τ = {fit.tau:.4g}{se} {time_unit}s",
                   subtitle="estimate ± standard error; model c(t) = A·exp(−(t − t0)/τ) + C")
