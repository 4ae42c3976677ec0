"""Figures of the Parameters page: the preview under the current parameters, saved runs
compared, a one- or two-parameter sweep, the decay fit (time in the lattice time unit), and
retrieval outcomes: a metric against one parameter, a heatmap over two, the optimiser's trials."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.engine import half_life, humanize_duration
from ui.charts.theme import ACCENT, COLORWAY, MUTED, SEQUENTIAL, WARM, band, finish, short, time_label


def preview_chart(current: pd.DataFrame, baseline: pd.DataFrame | None = None,
                  time_unit: str = "hour") -> go.Figure:
    """Mean coherence, 5-95 % band and R under the current parameters (vs. the defaults)."""
    fig = go.Figure()
    t = current["time"]
    band(fig, t, current["c_p5"], current["c_p95"], "coherence 5-95 % (current)", 0.16)
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
    return finish(fig, "Preview: the lattice under the current parameters", height=400)


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
    return finish(fig, f"Saved runs compared ({len(runs)})", height=420,
                   subtitle="solid: mean coherence · dotted: order parameter R")


def _half_lives(values, time_unit: str) -> np.ndarray:
    """Half-life texts at E = 1 (ln 2 / λ, humanised) of decay scales ``values``."""
    return np.array([humanize_duration(half_life(1.0, float(v)), time_unit) for v in np.asarray(values, float).ravel()],
                    dtype=object).reshape(np.shape(values))


def sweep_chart(results: pd.DataFrame, params: Sequence[str], metric: str, metric_label: str,
                param_labels: Mapping[str, str] | None = None, time_unit: str = "hour") -> go.Figure:
    """A line (one swept parameter) or a heatmap (two) of ``metric``; over the decay scale λ the
    hover also gives the half-life at E = 1 (in the lattice's ``time_unit``)."""
    labels = dict(param_labels or {})
    params = list(params)
    if len(params) == 1:
        p = params[0]
        df = results.sort_values(p)
        extra = {}
        if p == "lambda_":
            extra = dict(customdata=_half_lives(df[p], time_unit),
                         hovertemplate=f"{labels.get(p, p)} = %{{x:.4g}} (half-life %{{customdata}})<br>"
                                       f"{metric_label} = %{{y:.4f}}<extra></extra>")
        fig = go.Figure(go.Scatter(x=df[p], y=df[metric], mode="lines+markers", name=metric_label,
                                   line=dict(color=ACCENT, width=2.5), marker=dict(size=7), **extra))
        fig.update_xaxes(title_text=labels.get(p, p))
        fig.update_yaxes(title_text=metric_label)
        return finish(fig, f"Sweep of {labels.get(p, p)}: {metric_label}",
                      subtitle="hover a point for the half-life at E = 1" if p == "lambda_" else None)
    px_, py_ = params
    pivot = results.pivot_table(index=py_, columns=px_, values=metric, aggfunc="mean")
    xs, ys = pivot.columns.to_numpy(), pivot.index.to_numpy()
    hx = hy = ""
    custom = None
    if "lambda_" in params:  # the half-life of the λ of each cell, on hover
        lam = np.broadcast_to(xs[None, :] if px_ == "lambda_" else ys[:, None], pivot.shape)
        custom = _half_lives(lam, time_unit)
        hx, hy = (" (half-life %{customdata})", "") if px_ == "lambda_" else ("", " (half-life %{customdata})")
    fig = go.Figure(go.Heatmap(z=pivot.to_numpy(dtype=np.float32), x=xs, y=ys, colorscale=SEQUENTIAL,
                               customdata=custom,
                               colorbar=dict(title=dict(text=short(metric_label, 18)), thickness=12),
                               hovertemplate=f"{labels.get(px_, px_)} = %{{x:.3g}}{hx}<br>{labels.get(py_, py_)} = "
                                             f"%{{y:.3g}}{hy}<br>{metric_label} = %{{z:.4f}}<extra></extra>"))
    fig.update_xaxes(title_text=labels.get(px_, px_))
    fig.update_yaxes(title_text=labels.get(py_, py_))
    return finish(fig, f"Sweep: {metric_label}", height=460)


def compare_sweeps_chart(sweeps: Sequence[tuple[str, pd.DataFrame]], param: str, metric: str, metric_label: str,
                         param_labels: Mapping[str, str] | None = None, time_unit: str = "hour") -> go.Figure:
    """Saved one-parameter sweeps of the same parameter and outcome, one line each (over the decay
    scale λ the hover gives the half-life at E = 1 too)."""
    labels = dict(param_labels or {})
    fig = go.Figure()
    for k, (name, df) in enumerate(sweeps):
        d = df.sort_values(param)
        extra = {}
        if param == "lambda_":
            extra = dict(customdata=_half_lives(d[param], time_unit),
                         hovertemplate=f"{labels.get(param, param)} = %{{x:.4g}} (half-life %{{customdata}})<br>"
                                       f"{metric_label} = %{{y:.4f}}<extra>{short(name, 40)}</extra>")
        fig.add_trace(go.Scatter(x=d[param], y=d[metric], mode="lines+markers", name=short(name, 60),
                                 line=dict(color=COLORWAY[k % len(COLORWAY)], width=2), marker=dict(size=6), **extra))
    fig.update_xaxes(title_text=labels.get(param, param))
    fig.update_yaxes(title_text=metric_label)
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return finish(fig, f"Saved sweeps compared ({len(sweeps)}): {metric_label}", height=420)


FIT_CURVES_SHOWN = 12  # gems (groups) drawn in the decay fit chart; the fit uses all


def fit_title(fit) -> str:
    """The decay fit's headline: λ ± SE and the half-life, or the shared τ when energies were unknown."""
    u = fit.time_unit
    se = f" ± {fit.lambda_se:.2g}" if np.isfinite(fit.lambda_se) else ""
    if fit.energies_known:
        return f"Decay fit: λ = {fit.lambda_:.4g}{se} per {u}, half-life {fit.half_life_text} at E = 1"
    tse = f" ± {fit.tau_se:.3g}" if np.isfinite(fit.tau_se) else ""
    return f"Decay fit: shared τ = {fit.tau:.4g}{tse} {u}s (λ = {fit.lambda_:.4g}{se} per {u} at E = 1)"


def decay_fit_chart(t: np.ndarray, coherence: np.ndarray, groups: Sequence | None, fit,
                    time_unit: str = "hour") -> go.Figure:
    """Observations (markers) and each gem's fitted ``A exp(-λ (t - t0)/E) + C`` curve (the first
    :data:`FIT_CURVES_SHOWN` gems: a log fit may have hundreds)."""
    t = np.asarray(t, dtype=float)
    y = np.asarray(coherence, dtype=float)
    fig = go.Figure()
    keys = list(fit.curves)
    shown = keys[:FIT_CURVES_SHOWN]
    g = np.asarray(groups, dtype=object).astype(str) if groups is not None else None
    for k, key in enumerate(shown):
        color = COLORWAY[k % len(COLORWAY)]
        sel = (g == str(key)) if (g is not None and key is not None) else np.ones_like(t, dtype=bool)
        name = "observations" if key is None else f"{short(key, 40)}"
        fig.add_trace(go.Scatter(x=t[sel], y=y[sel], mode="markers", name=name,
                                 marker=dict(size=7, color=color, opacity=0.8), legendgroup=str(key)))
        ct, cc = fit.curves[key]
        fig.add_trace(go.Scatter(x=ct, y=cc, mode="lines", name="fit" if key is None else f"fit {short(key, 36)}",
                                 line=dict(color=color, width=2.5), legendgroup=str(key), showlegend=len(shown) <= 6))
    fig.update_xaxes(title_text=time_label(time_unit))
    fig.update_yaxes(title_text="coherence c (0-1)")
    model = "c = A·exp(−λ (t − t0)/E) + C" if fit.energies_known else "c = A·exp(−(t − t0)/τ) + C"
    more = f" · {len(shown)} of {len(keys)} gems drawn" if len(keys) > len(shown) else ""
    return finish(fig, fit_title(fit), height=420, subtitle=f"estimate ± standard error; model {model}{more}")


# ------------------------------------------------- retrieval outcomes (sweep, optimiser)
AXIS_TICKS = 7  # at most this many labelled ticks on a humanised half-life axis
HEATMAP_TICKS = 12  # a heatmap side up to this many cells labels every cell
PINK = COLORWAY[3]  # the best cell's star: visible on every colour of the sequential scale


def _axis_text(name: str, values, time_unit: str) -> list[str]:
    """How a swept value reads: a half-life humanised ("7 days"), any other number to 3 digits."""
    if name == "half_life":
        return [humanize_duration(float(v), time_unit) for v in values]
    return [f"{float(v):.3g}" for v in values]


def _ticks(n: int, most: int = AXIS_TICKS) -> np.ndarray:
    """Indices of ``n`` grid values to label: all up to ``most``, else ``most`` evenly spread
    (ends included)."""
    return np.unique(np.round(np.linspace(0, n - 1, n if n <= most else most)).astype(int))


def best_row(results: pd.DataFrame, metric: str) -> pd.Series:
    """The grid point with the highest ``metric`` (the first of equals; NaN never wins)."""
    return results.loc[results[metric].astype(float).fillna(-np.inf).idxmax()]


def outcome_line_chart(results: pd.DataFrame, param: str, metric: str, metric_label: str, param_label: str,
                       time_unit: str = "hour", log: bool = False) -> go.Figure:
    """``metric`` (0-1) against one swept parameter with its 95 % interval as a band and the best
    point starred; a half-life axis (lattice time units) has humanised ticks and hover."""
    df = results.sort_values(param)
    x = df[param].to_numpy(dtype=float)
    text = _axis_text(param, x, time_unit)
    fig = go.Figure()
    band(fig, x, df[f"{metric}_low"], df[f"{metric}_high"], "95 % interval", 0.2)
    fig.add_trace(go.Scatter(x=x, y=df[metric], mode="lines+markers", name=metric_label, customdata=text,
                             line=dict(color=ACCENT, width=2.5), marker=dict(size=7),
                             hovertemplate=f"{param_label} = %{{customdata}}<br>{metric_label} = %{{y:.3f}}"
                                           "<extra></extra>"))
    best = best_row(df, metric)
    best_text = _axis_text(param, [best[param]], time_unit)[0]
    fig.add_trace(go.Scatter(x=[best[param]], y=[best[metric]], mode="markers", name="best",
                             marker=dict(symbol="star", size=16, color=WARM, line=dict(width=1, color="white")),
                             hovertemplate=f"best: {param_label} = {best_text}<br>{metric_label} = %{{y:.3f}}"
                                           "<extra></extra>"))
    if param == "half_life":
        ticks = _ticks(len(x))
        fig.update_xaxes(tickvals=x[ticks], ticktext=[text[i] for i in ticks])
    fig.update_xaxes(title_text=param_label + (" (log scale)" if log else ""), type="log" if log else "linear")
    fig.update_yaxes(title_text=metric_label + " (0-1)", rangemode="tozero")
    fig.update_layout(legend=dict(orientation="h", y=-0.22))
    return finish(fig, f"{metric_label} against {param_label}", height=420,
                  subtitle=f"★ best: {best[metric]:.3f} [{best[f'{metric}_low']:.3f}, {best[f'{metric}_high']:.3f}] "
                           f"at {best_text}; band: 95 % bootstrap interval")


def outcome_heatmap(results: pd.DataFrame, params: Sequence[str], metric: str, metric_label: str,
                    param_labels: Mapping[str, str], time_unit: str = "hour") -> go.Figure:
    """``metric`` over a grid of two parameters: one cell per grid point (cells evenly spaced in
    grid order, so a log-spaced axis reads evenly), the values humanised on the axes and on hover,
    the interval on hover, the best cell starred and its value in the subtitle. At most
    ``core.evaluation.grid.MAX_POINTS`` cells (far under the charts' ``MAX_HEATMAP_SIDE``)."""
    px_, py_ = params
    pivot = results.pivot_table(index=py_, columns=px_, values=metric, aggfunc="mean")
    low = results.pivot_table(index=py_, columns=px_, values=f"{metric}_low", aggfunc="mean")
    high = results.pivot_table(index=py_, columns=px_, values=f"{metric}_high", aggfunc="mean")
    xs, ys = pivot.columns.to_numpy(dtype=float), pivot.index.to_numpy(dtype=float)
    xt, yt = _axis_text(px_, xs, time_unit), _axis_text(py_, ys, time_unit)
    custom = np.dstack([np.broadcast_to(np.array(xt, dtype=object)[None, :], pivot.shape),
                        np.broadcast_to(np.array(yt, dtype=object)[:, None], pivot.shape),
                        low.to_numpy(dtype=float).round(3), high.to_numpy(dtype=float).round(3)])
    lx, ly = param_labels.get(px_, px_), param_labels.get(py_, py_)
    small = pivot.size <= 144  # values written in the cells while they are readable
    fig = go.Figure(go.Heatmap(
        z=pivot.to_numpy(dtype=np.float32), x=np.arange(len(xs)), y=np.arange(len(ys)), colorscale=SEQUENTIAL,
        zmin=0.0, zmax=max(float(np.nanmax(pivot.to_numpy(dtype=float))), 1e-9), customdata=custom,
        texttemplate="%{z:.2f}" if small else None, textfont=dict(size=11),
        colorbar=dict(title=dict(text=short(metric_label, 18)), thickness=12),
        hovertemplate=f"{lx} = %{{customdata[0]}}<br>{ly} = %{{customdata[1]}}<br>{metric_label} = %{{z:.3f}} "
                      "[%{customdata[2]}, %{customdata[3]}]<extra></extra>"))
    best = best_row(results, metric)
    bx, by = int(np.flatnonzero(xs == best[px_])[0]), int(np.flatnonzero(ys == best[py_])[0])
    fig.add_trace(go.Scatter(x=[bx], y=[by], mode="markers", name="best", showlegend=False,
                             marker=dict(symbol="star", size=20, color=PINK, line=dict(width=1.5, color="white")),
                             hovertemplate=f"best: {metric_label} = {best[metric]:.3f}<extra></extra>"))
    tx, ty = _ticks(len(xs), HEATMAP_TICKS), _ticks(len(ys), HEATMAP_TICKS)
    fig.update_xaxes(title_text=lx, tickvals=tx, ticktext=[xt[i] for i in tx], showgrid=False)
    fig.update_yaxes(title_text=ly, tickvals=ty, ticktext=[yt[i] for i in ty], showgrid=False)
    return finish(fig, f"{metric_label} over {lx} and {ly}", height=480,
                  subtitle=f"★ best cell: {best[metric]:.3f} [{best[f'{metric}_low']:.3f}, "
                           f"{best[f'{metric}_high']:.3f}] at {lx} = {xt[bx]}, {ly} = {yt[by]}")


def trials_chart(trials: pd.DataFrame, metric: str, metric_label: str) -> go.Figure:
    """The optimiser's trials in order: each trial's ``metric``, the best so far, the best starred."""
    t = trials["trial"].to_numpy(dtype=int)
    y = trials[metric].to_numpy(dtype=float)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t, y=y, mode="markers", name="trial", marker=dict(size=7, color=MUTED)))
    fig.add_trace(go.Scatter(x=t, y=np.fmax.accumulate(np.nan_to_num(y, nan=-np.inf)), mode="lines",
                             name="best so far", line=dict(color=ACCENT, width=2.5, shape="hv")))
    b = int(np.nanargmax(y))
    fig.add_trace(go.Scatter(x=[t[b]], y=[y[b]], mode="markers", name="best",
                             marker=dict(symbol="star", size=16, color=WARM, line=dict(width=1, color="white"))))
    fig.update_xaxes(title_text="trial (in the order tried)")
    fig.update_yaxes(title_text=metric_label + " (0-1)", rangemode="tozero")
    fig.update_layout(legend=dict(orientation="h", y=-0.22))
    return finish(fig, f"Search: {metric_label} of each trial", height=380)
