"""Gem Lattice Workbench: Streamlit entry point (first version: the demo lattice evolving)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.demo import load_demo_lattice
from core.errors import LatticeError
from core.trajectory import simulate

st.set_page_config(page_title="Gem Lattice Workbench", page_icon="💎", layout="wide")
st.title("Gem Lattice Workbench")


@st.cache_data
def demo_trajectory(horizon: float, dt: float):
    lattice, _ = load_demo_lattice()
    return simulate(lattice, horizon, dt=dt)


try:
    horizon = st.sidebar.slider("Horizon (hours)", 1.0, 48.0, 12.0, 1.0)
    traj = demo_trajectory(horizon, 0.1)
except LatticeError as exc:
    st.error(str(exc))
    st.stop()

s = traj.series
fig = make_subplots(rows=1, cols=2, subplot_titles=("Coherence and order parameter", "Phasors at the end"),
                    specs=[[{"type": "xy"}, {"type": "polar"}]])
fig.add_trace(go.Scatter(x=s.time, y=s.c_p95, line=dict(width=0), showlegend=False), 1, 1)
fig.add_trace(go.Scatter(x=s.time, y=s.c_p5, fill="tonexty", line=dict(width=0), name="coherence 5-95%"), 1, 1)
fig.add_trace(go.Scatter(x=s.time, y=s.mean_coherence, name="mean coherence"), 1, 1)
fig.add_trace(go.Scatter(x=s.time, y=s.R, name="order parameter R"), 1, 1)
end = traj.final
fig.add_trace(go.Scatterpolar(theta=np.degrees(end.wrapped_phase()), r=end.coherence, mode="markers",
                              name="gems (angle = phase, radius = coherence)"), 1, 2)
fig.update_xaxes(title_text="time (hours)", row=1, col=1)
fig.update_yaxes(title_text="coherence (0-1)", row=1, col=1)
st.plotly_chart(fig, use_container_width=True)
