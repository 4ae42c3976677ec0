"""Cache & metrics: resonance cache, reflection latency, LLM providers, lattice coherence over time."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.errors import LatticeError
from ui import metrics_charts as mc
from ui.context import page_context, require_store
from ui.decay_log import cached_history
from ui.services import get_workbench
from ui.tables import download_csv

ctx = page_context()
store = require_store(ctx)
wb = get_workbench()
name = ctx.name

head, live_col = st.columns([5, 1])
head.title("Cache & metrics")
head.caption("Cache, latency and provider figures are this server process's (since it started); reflection "
             "latencies and the lattice history come from the database.")
live = live_col.toggle("Live", key="met_live", help="Refresh the process figures every 5 s.")


@st.fragment(run_every=5 if live else None)
def process_metrics() -> None:
    stats = wb.cache.stats()
    lat = wb.latency.summary()
    m = st.columns(5)
    m[0].metric("Cache hit ratio", f"{stats.hit_ratio:.0%}" if stats.hits + stats.misses else "—",
                help="hits / (hits + misses) since the server started")
    m[1].metric("Hits / misses", f"{stats.hits} / {stats.misses}")
    m[2].metric("Cache size", f"{stats.size} / {stats.maxsize}", help="entries / maximum (LRU)")
    m[3].metric("Evictions", f"{stats.evictions}")
    m[4].metric("Reflection p50 / p95", f"{lat['p50']:.2f} / {lat['p95']:.2f} s" if lat["count"] else "—",
                help=f"{lat['count']} reflections answered by this process")
    c1, c2 = st.columns(2)
    with c1:
        hist = wb.cache.history_frame()
        st.plotly_chart(mc.cache_hit_ratio_chart(hist), key="met_cache")
        if hist.empty:
            st.caption("No lookups yet: ask a question on the Reflection page.")
    with c2:
        snap = wb.router.metrics_snapshot()
        st.plotly_chart(mc.provider_error_chart(snap), key="met_providers")
    table = pd.DataFrame([{"provider": n, "model": s.get("model", ""), "available": s["available"],
                           "why unavailable": s.get("unavailable_reason") or "", "attempts": s["calls"],
                           "errors": s["errors"], "error rate": s["error_rate"], "skipped": s["skipped"],
                           "p50 latency (s)": s["latency_p50"], "p95 latency (s)": s["latency_p95"],
                           "cooling down": s["cooling"], "cooldown left (s)": s["cooldown_remaining_s"],
                           "last error": s.get("last_error") or ""} for n, s in snap.items()])
    st.dataframe(table, hide_index=True, key="met_provider_table", column_config={
        "error rate": st.column_config.NumberColumn(format="percent"),
        "p50 latency (s)": st.column_config.NumberColumn(format="%.3f"),
        "p95 latency (s)": st.column_config.NumberColumn(format="%.3f"),
        "cooldown left (s)": st.column_config.NumberColumn(format="%.0f")})


process_metrics()

st.subheader("Lattice " + name)
c3, c4 = st.columns(2)
with c3:
    refl = store.list_reflections(name, limit=1000)
    lat_s = (refl["latency_ms"].dropna().to_numpy(dtype=float) / 1000.0) if not refl.empty else np.array([])
    st.plotly_chart(mc.latency_histogram(lat_s, f"The last {len(lat_s)} stored reflections of lattice {name} "
                                                "(all users and server processes)"), key="met_latency")
    if not len(lat_s):
        st.caption("No reflections stored yet for this lattice.")


with c4:
    try:
        history = cached_history(store, store.url, name, ctx.loaded.version)
    except LatticeError as exc:
        st.error(f"No history: {exc}")
    else:
        spread = history.frame["lattice_t"].nunique() > 1
        chart_slot = st.container()  # the chart above its axis choice (aligned with the latency chart)
        x_axis = st.radio("Against", list(mc.HISTORY_AXES), index=0 if spread else 1, horizontal=True,
                          key="met_history_x", help="A manual clock only moves when advanced: changes made at the "
                                                    "same lattice time line up vertically; wall time spreads them.")
        chart_slot.plotly_chart(mc.lattice_history_chart(history.frame, ctx.time_unit, name, x_axis),
                                key="met_history")
        note = f"{history.entries} log entries replayed."
        if history.stopped_at:
            note += f" The series stops early: {history.stopped_at}."
        st.caption(note)
        download_csv(history.frame, f"{name}-history.csv", key="met_history_csv", label="History (CSV)")
