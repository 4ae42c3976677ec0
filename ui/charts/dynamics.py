"""Figures of the lattice over time: coherence, uncertainty, order parameter R(t) and mean
phase psi(t), and the gem phasors at one instant (time in the lattice time unit, phase in
degrees, coherence/uncertainty/R on [0, 1])."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ui.charts.theme import ACCENT, BG, COLORWAY, SEQUENTIAL, WARM, band, finish, short, time_label, time_marker


def coherence_over_time(series: pd.DataFrame, gems: pd.DataFrame | None = None,
                        titles: Mapping | None = None, chosen: Sequence | None = None,
                        time_unit: str = "hour", current_time: float | None = None) -> go.Figure:
    """All gems as a 5-95 % and 25-75 % percentile band with the median; chosen gems as lines.

    series : ``Trajectory.series`` (time, c_p5 .. c_p95).
    gems : ``Trajectory.gems`` (tidy time, gem, coherence); chosen gem ids drawn as lines.
    """
    fig = go.Figure()
    t = series["time"]
    band(fig, t, series["c_p5"], series["c_p95"], "all gems, 5-95 %", 0.14)
    band(fig, t, series["c_p25"], series["c_p75"], "all gems, 25-75 %", 0.26)
    fig.add_trace(go.Scatter(x=t, y=series["c_p50"], mode="lines", name="median",
                             line=dict(color=ACCENT, width=2, dash="dash")))
    if gems is not None and chosen:
        for k, gid in enumerate(chosen):
            g = gems[gems["gem"] == gid]
            if g.empty:
                continue
            label = short((titles or {}).get(gid, gid))
            fig.add_trace(go.Scatter(x=g["time"], y=g["coherence"], mode="lines", name=label,
                                     line=dict(width=2, color=COLORWAY[(k + 1) % len(COLORWAY)])))
    time_marker(fig, current_time, time_unit)
    fig.update_xaxes(title_text=time_label(time_unit))
    fig.update_yaxes(title_text="coherence c (0-1)", range=[0, 1.02])
    return finish(fig, "Coherence over time")


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
                                     name=short((titles or {}).get(gid, gid)),
                                     line=dict(width=1.5, color=COLORWAY[(k + 1) % len(COLORWAY)])))
    time_marker(fig, current_time, time_unit)
    fig.update_xaxes(title_text=time_label(time_unit))
    fig.update_yaxes(title_text="uncertainty u (0-1)", range=[0, 1.02])
    return finish(fig, "Uncertainty over time")


def order_parameter_over_time(series: pd.DataFrame, time_unit: str = "hour",
                              current_time: float | None = None) -> go.Figure:
    """R(t) on the left axis (0-1) and psi(t) in degrees on the right axis."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=series["time"], y=series["R"], mode="lines", name="R (order parameter)",
                             line=dict(color=ACCENT, width=2.5)))
    psi = np.degrees(np.asarray(series["psi"], dtype=float))
    psi[1:][np.abs(np.diff(psi)) > 180] = np.nan  # break the line where psi wraps at ±180°
    fig.add_trace(go.Scatter(x=series["time"], y=psi, mode="lines", name="ψ (mean phase, °)", yaxis="y2",
                             connectgaps=False, line=dict(color=WARM, width=1.5)))
    time_marker(fig, current_time, time_unit)
    r_max = float(np.nanmax(series["R"])) if len(series) else 1.0
    fig.update_layout(
        xaxis=dict(title=dict(text=time_label(time_unit))),
        yaxis=dict(title=dict(text="R (0-1)"), range=[0, max(0.05, min(1.0, r_max * 1.15))]),
        yaxis2=dict(title=dict(text="ψ (degrees)"), overlaying="y", side="right", range=[-180, 180],
                    showgrid=False, tickvals=[-180, -90, 0, 90, 180]),
        legend=dict(orientation="h", y=-0.28, yanchor="top", x=0, xanchor="left"),  # below the axis, clear of the title
        margin=dict(b=90),
    )
    return finish(fig, "Order parameter R(t) and mean phase ψ(t)")


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
    # The chosen gems are ringed, one legend entry each in the colour of their lines on the other
    # charts; no text labels on the plot: as coherence decays the gems gather near the centre and
    # labels would pile into one blob. Names are in the legend and on hover.
    for k, i in enumerate(list(highlight or [])):
        color = COLORWAY[(k + 1) % len(COLORWAY)]
        fig.add_trace(go.Scatterpolar(
            theta=[deg[i]], r=[coh[i]], mode="markers", name=short(labels[i], 28), text=[labels[i]],
            marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(width=2.5, color=color)),
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
    legend_rows = (len(list(highlight or [])) + 2) // 3  # the chosen gems' legend grows downwards
    return finish(fig, title, height=460 + 22 * legend_rows, subtitle="angle = phase (degrees), radius = coherence (0-1)")
