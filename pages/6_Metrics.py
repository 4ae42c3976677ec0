"""Cache & metrics: resonance cache, reflection latency, LLM providers, replication lag, lattice
coherence over time. The stored figures are read from the read replica when one is configured
(LATTICE_READ_DATABASE_URL)."""
from __future__ import annotations

import streamlit as st

from core.errors import LatticeError
from core.service import Workbench
from core.store import Store
from ui import charts
from ui.context import PageContext, page_context, require_store
from ui.decay_log import cached_history
from ui.metrics import default_history_axis, provider_table, reflection_latencies, replication_table
from ui.services import get_read_store, get_workbench, read_database_url
from ui.tables import download_csv

PROVIDER_COLUMNS = {
    "error rate": st.column_config.NumberColumn(format="percent"),
    "p50 latency (s)": st.column_config.NumberColumn(format="%.3f"),
    "p95 latency (s)": st.column_config.NumberColumn(format="%.3f"),
    "cooldown left (s)": st.column_config.NumberColumn(format="%.0f")}


def process_metrics(wb: Workbench) -> None:
    """This server process's cache, latency and provider figures (a fragment: "Live" refreshes it)."""
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
        st.plotly_chart(charts.cache_hit_ratio_chart(hist), key="met_cache")
        if hist.empty:
            st.caption("No lookups yet: ask a question on the Reflection page.")
    with c2:
        snap = wb.router.metrics_snapshot()
        st.plotly_chart(charts.provider_error_chart(snap), key="met_providers")
    st.dataframe(provider_table(snap), hide_index=True, key="met_provider_table", column_config=PROVIDER_COLUMNS)


def replication(primary: Store) -> None:
    """Streaming replication: every standby's lag as the primary sees it, and the read replica's
    own (a fragment: "Live" refreshes it)."""
    try:
        status = primary.replication()
    except LatticeError as exc:
        st.error(f"Replication status unavailable: {exc}")
        return
    if status.role == "none":
        st.caption(f"Replication: none ({status.dialect}); back up and restore as the README's runbook says.")
        return
    rows, notes = status.figures(), [status.summary()]
    if read_database_url():
        try:
            own = get_read_store().replication()
            rows += own.figures()
            notes.append(f"read replica: {own.summary()}")
        except LatticeError as exc:
            notes.append(f"read replica unavailable: {exc}")
    lags = [r["lag_seconds"] for r in rows if r["lag_seconds"] is not None]
    m = st.columns(3)
    m[0].metric("Standbys", str(len(status.standbys)), help="standbys streaming from this primary now")
    sync = "on" if status.synchronous else ("waiting: no standby" if status.synchronous_standby_names else "off")
    m[1].metric("Synchronous commit", sync,
                help=f"synchronous_standby_names = {status.synchronous_standby_names!r}; synchronous_commit = "
                     f"{status.synchronous_commit}: a commit is acknowledged once a synchronous standby has it")
    m[2].metric("Max replication lag", f"{max(lags):.2f} s" if lags else "—",
                help="commit on the primary to replay on a standby")
    st.dataframe(replication_table(rows), hide_index=True, key="met_replication")
    st.caption(" · ".join(notes))


def reading_store(ctx: PageContext) -> Store:
    """Where this page's stored figures come from: the read replica if configured (the
    primary, with a warning, when it cannot be opened)."""
    try:
        return get_read_store()
    except LatticeError as exc:
        st.warning(f"Reading from the primary: {exc}")
        return ctx.store


def reflection_latency(ctx: PageContext, store: Store) -> None:
    try:
        lat_s = reflection_latencies(store.list_reflections(ctx.name, limit=1000))
    except LatticeError as exc:  # e.g. a lattice the replica has not replayed yet
        st.error(f"No reflection latencies: {exc}")
        return
    st.plotly_chart(charts.latency_histogram(lat_s, f"The last {len(lat_s)} stored reflections of lattice "
                                                    f"{ctx.name} (all users and server processes)"),
                    key="met_latency")
    if not len(lat_s):
        st.caption("No reflections stored yet for this lattice.")


def lattice_history(ctx: PageContext, store: Store) -> None:
    name = ctx.name
    try:  # the version read where the history is (a replica may be behind the page's lattice)
        version = ctx.loaded.version if store is ctx.store else store.version(name)
        history = cached_history(store, store.url, name, version)
    except LatticeError as exc:
        st.error(f"No history: {exc}")
        return
    chart_slot = st.container()  # the chart above its axis choice (aligned with the latency chart)
    x_axis = st.radio("Against", list(charts.HISTORY_AXES), index=default_history_axis(history.frame),
                      horizontal=True, key="met_history_x",
                      help="A manual clock only moves when advanced: changes made at the same lattice time line "
                           "up vertically; wall time spreads them.")
    chart_slot.plotly_chart(charts.lattice_history_chart(history.frame, ctx.time_unit, name, x_axis),
                            key="met_history")
    note = f"{history.entries} log entries replayed."
    if history.stopped_at:
        note += f" The series stops early: {history.stopped_at}."
    st.caption(note)
    download_csv(history.frame, f"{name}-history.csv", key="met_history_csv", label="History (CSV)")


# ---------------------------------------------------------------------- page
ctx = page_context()
require_store(ctx)  # the lattice's figures come from the database
wb = get_workbench()

head, live_col = st.columns([5, 1])
head.title("Cache & metrics")
head.caption("Cache, latency and provider figures are this server process's (since it started); reflection "
             "latencies and the lattice history come from the database.")
live = live_col.toggle("Live", key="met_live", help="Refresh the process figures every 5 s.")
st.fragment(process_metrics, run_every=5 if live else None)(wb)

st.subheader("Replication")
st.fragment(replication, run_every=5 if live else None)(ctx.store)

st.subheader("Lattice " + ctx.name)
reader = reading_store(ctx)
c3, c4 = st.columns(2)
with c3:
    reflection_latency(ctx, reader)
with c4:
    lattice_history(ctx, reader)
