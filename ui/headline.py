"""Headline figures of a lattice (Lattice page): gems, coherence, R, cache, last reflection."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from core.engine import Lattice
from core.service import Workbench
from core.store import Store
from ui.text import safe_markdown


def ago(when) -> str:
    """'3 min ago' for a timestamp (naive timestamps are taken as UTC)."""
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    s = max(0.0, (datetime.now(timezone.utc) - ts.to_pydatetime()).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.0f} {unit} ago"
    return f"{s:.0f} s ago"


def last_reflection(store: Store, name: str) -> dict | None:
    df = store.list_reflections(name, limit=1)
    return None if df.empty else df.iloc[0].to_dict()


@st.cache_data(max_entries=32, show_spinner=False)
def _archived(_store: Store, url: str, name: str, version: int) -> int:
    """Archived gems of lattice ``name`` at ``version`` (a count over every gem: 1 s at 1M gems)."""
    return _store.info(name).archived


def headline_metrics(store: Store, workbench: Workbench, name: str, lattice: Lattice,
                     version: int | None = None) -> None:
    """The headline figures; with the lattice's ``version`` the archived count is read once per version."""
    s = lattice.summary()
    archived = store.info(name).archived if version is None else _archived(store, store.url, name, int(version))
    cache = workbench.cache.stats()
    last = last_reflection(store, name)
    c = st.columns(5)
    c[0].metric("Gems", f"{s['gems']}", help=f"Active gems; {archived} archived, {s['entanglements']} "
                                           "entanglements.")
    c[1].metric("Mean coherence", f"{s['mean_coherence']:.3f}", help="Mean coherence c of the active gems (0-1).")
    c[2].metric("Order parameter R", f"{s['R']:.3f}", help="|mean(c·e^{iφ})|: 1 = all coherent and in phase.")
    lookups = cache.hits + cache.misses
    c[3].metric("Cache hit ratio", f"{cache.hit_ratio:.0%}" if lookups else "—",
                help=f"Resonance cache of this server process: {cache.hits} hits, {cache.misses} misses, "
                     f"{cache.size}/{cache.maxsize} entries.")
    if last:
        c[4].metric("Last reflection", ago(last["created_at"]),
                    help=f"{last['actor']} asked: {safe_markdown(str(last['query'])[:200])}")
    else:
        c[4].metric("Last reflection", "none yet", help="Ask a question on the Reflection page.")
