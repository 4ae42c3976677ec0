"""Who reinforces whom: the interference matrix of chosen gems (ordered by phase,
block-averaged above a size) as a heatmap, and the entanglement network on the phase circle.

Heatmaps are float32 and at most ``MAX_HEATMAP_SIDE`` x ``MAX_HEATMAP_SIDE`` cells; larger
selections are block-averaged and the title says so.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from ui.charts.theme import BG, DIVERGING, GRID, MUTED, SEQUENTIAL, finish, short

MAX_HEATMAP_SIDE = 1000
MAX_NAMED_TICKS = 40  # up to this many gems every row is labelled with its name
DRAWN_HEATMAP_SIDE = 400  # the pages' cap: the heatmap's plot area is ~450 px, so more cells would not show


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
            base = name = short(lab, 40) + (f" ({p:.0f}°)" if p is not None else "")
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
    tick_step = 1 if n <= MAX_NAMED_TICKS else max(1, n // 20)
    ticks = list(range(0, n, tick_step))
    if named:  # rows and columns carry the gems' names (their phase is in the hover)
        ticktext = [short(labels[i], 22) for i in ticks]
        ticks = [axis[i] for i in ticks]
    elif phases_deg is not None and block == 1:
        ticktext = [f"{float(phases_deg[i]):.0f}°" for i in ticks]
    else:
        ticktext = [str(i * block) for i in ticks]
    axis_type = "category" if named else "linear"
    axis_title = ("gems, ordered by phase (hover for the phase)" if named
                  else "gems by phase (phase in degrees)" if block == 1 else "gem rank by phase")
    fig.update_xaxes(title_text=axis_title, tickvals=ticks, ticktext=ticktext, showgrid=False, showline=False,
                     zeroline=False, type=axis_type)
    fig.update_yaxes(title_text=axis_title, tickvals=ticks, ticktext=ticktext, autorange="reversed", type=axis_type,
                     showgrid=False, showline=False, zeroline=False, scaleanchor="x")
    return finish(fig, title, height=580, subtitle=subtitle)


def entanglement_network(phase: np.ndarray, coherence: np.ndarray, labels: Sequence[str],
                         edges: tuple[np.ndarray, np.ndarray, np.ndarray],
                         max_edges: int = 2000) -> go.Figure:
    """Entangled gems on a circle at their phase angle; line width/opacity = weight.

    Gems in phase sit together, so clusters of entangled, aligned gems are visible at a
    glance; colour = coherence. Only gems with at least one edge are drawn.
    """
    ei, ej, w = (np.asarray(x) for x in edges)
    total = len(w)
    if len(w) > max_edges:
        keep = np.argsort(-w)[:max_edges]
        ei, ej, w = ei[keep], ej[keep], w[keep]
    fig = go.Figure()
    if len(w) == 0:
        fig.add_annotation(text="no entanglements in this lattice", showarrow=False, font=dict(color=MUTED))
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return finish(fig, "Entanglement network", height=520)
    ang = np.mod(np.asarray(phase, dtype=float), 2 * np.pi)
    coh = np.asarray(coherence, dtype=float)
    # More coherent gems sit further out (the phasor picture), spread over the coherence range of
    # the drawn gems: after a look-ahead every gem has decayed and they would pile up near the centre.
    drawn = np.unique(np.concatenate((ei, ej)))
    lo, hi = float(coh[drawn].min()), float(coh[drawn].max())
    radius = 0.35 + 0.65 * ((coh - lo) / (hi - lo) if hi - lo > 1e-9 else np.ones_like(coh))
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
    fig.add_trace(go.Scatter(
        x=x[nodes], y=y[nodes], mode="markers", name="gems",
        marker=dict(size=(7 + 2.5 * np.sqrt(deg[nodes])).astype(np.float32), color=coh[nodes].astype(np.float32),
                    colorscale=SEQUENTIAL, cmin=0, cmax=1,
                    line=dict(width=0.6, color=BG), colorbar=dict(title=dict(text="c"), thickness=10)),
        text=[str(labels[i]) for i in nodes],  # only the drawn gems' labels are read (1M gems: 0.3 s for all)
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
    strongest = f" (the {len(w)} strongest of {total})" if total > len(w) else ""
    return finish(fig, f"Entanglement network: {len(nodes)} gems, {len(w)} links{strongest}", height=580,
                   subtitle=f"angle = phase (degrees), distance from centre = coherence ({lo:.2f} at the inner ring to "
                            f"{hi:.2f} at the outer); colour = coherence")
