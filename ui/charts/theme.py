"""The workbench's chart look and the helpers every figure builder shares.

Colours, the ``"lattice"`` plotly template (dark, the teal primary colour of
``.streamlit/config.toml``), :func:`finish` (title, subtitle, height, template),
:func:`time_label` (time axis in the lattice time unit), :func:`time_marker` (the
current time as a dotted line), :func:`short` (labels cut to length) and :func:`band`
(a filled percentile band).
"""
from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

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
# The default of every new figure: a figure takes its default template without validating it
# again (~10 ms), where setting ``template=`` afterwards re-validates a copy (~40 ms a figure,
# the better part of a page rerun with four charts).
pio.templates.default = TEMPLATE


def time_label(time_unit: str = "hour") -> str:
    """Axis title for lattice time, e.g. ``time (hours)``."""
    return f"time ({time_unit}s)"


def finish(fig: go.Figure, title: str, height: int = 380, subtitle: str | None = None) -> go.Figure:
    """Title (and a muted subtitle), height and the shared template of ``fig``."""
    layout_title = dict(text=title)
    if subtitle:
        layout_title["subtitle"] = dict(text=subtitle, font=dict(size=12, color=MUTED))
    if pio.templates.default != TEMPLATE:  # someone changed the default: set it on the figure
        fig.update_layout(template=TEMPLATE)
    fig.update_layout(title=layout_title, height=height)
    if subtitle:
        fig.update_layout(margin=dict(t=76))
    return fig


def time_marker(fig: go.Figure, current_time: float | None, time_unit: str) -> None:
    """A dotted vertical line at ``current_time`` (nothing when None)."""
    if current_time is not None:  # what add_vline(annotation_position="top right") draws, at half its cost
        x = float(current_time)
        fig.add_shape(type="line", x0=x, x1=x, xref="x", y0=0, y1=1, yref="y domain",
                      line=dict(color=WARM, width=1.5, dash="dot"))
        fig.add_annotation(x=x, xref="x", y=1, yref="y domain", text=f"t = {current_time:.3g}", showarrow=False,
                           font=dict(color=WARM), xanchor="left", yanchor="top")


def short(text: str, n: int = 32) -> str:
    """``text`` cut to at most ``n`` characters (with an ellipsis)."""
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def band(fig: go.Figure, t, lo, hi, name: str, opacity: float = 0.18, color: str = ACCENT) -> None:
    """A filled band between ``lo`` and ``hi`` over ``t`` (one legend entry ``name``)."""
    rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    fig.add_trace(go.Scatter(x=t, y=hi, mode="lines", line=dict(width=0), showlegend=False,
                             hoverinfo="skip", legendgroup=name))
    fig.add_trace(go.Scatter(x=t, y=lo, mode="lines", line=dict(width=0), fill="tonexty",
                             fillcolor=f"rgba{rgb + (opacity,)}", name=name, legendgroup=name,
                             hoverinfo="skip"))
