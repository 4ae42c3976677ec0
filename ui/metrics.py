"""Helpers of the Cache & metrics page: the provider table, stored reflection latencies, the
history chart's default axis, the replication table (no widgets here)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ui.charts import HISTORY_AXES


def provider_table(snapshot: dict) -> pd.DataFrame:
    """One row per LLM provider (router order) from ``Router.metrics_snapshot()``."""
    return pd.DataFrame([{"provider": n, "model": s.get("model", ""), "available": s["available"],
                          "why unavailable": s.get("unavailable_reason") or "", "attempts": s["calls"],
                          "errors": s["errors"], "error rate": s["error_rate"], "skipped": s["skipped"],
                          "p50 latency (s)": s["latency_p50"], "p95 latency (s)": s["latency_p95"],
                          "cooling down": s["cooling"], "cooldown left (s)": s["cooldown_remaining_s"],
                          "last error": s.get("last_error") or ""} for n, s in snapshot.items()])


def reflection_latencies(reflections: pd.DataFrame) -> np.ndarray:
    """Latencies in seconds of stored reflections (``Store.list_reflections``; unknown ones dropped)."""
    if reflections.empty:
        return np.array([])
    return reflections["latency_ms"].dropna().to_numpy(dtype=float) / 1000.0


def default_history_axis(frame: pd.DataFrame) -> int:
    """Index in :data:`HISTORY_AXES` of the history chart's default x axis: lattice time when the
    clock moved during the log, else wall time (a manual clock stacks every change at one time)."""
    return 0 if frame["lattice_t"].nunique() > 1 else list(HISTORY_AXES).index("wall time")


def replication_table(rows: list[dict]) -> pd.DataFrame:
    """One row per standby (``ReplicationStatus.figures()`` of the primary, then the read
    replica's view of itself): who, seen from where, state, synchronous, lag in bytes and s."""
    return pd.DataFrame([{"standby": r["standby"], "measured on": r["measured_on"], "state": r["state"],
                          "synchronous": {1: "yes", 0: "no"}.get(r["synchronous"], "—"),
                          "lag (bytes)": r["lag_bytes"], "lag (s)": r["lag_seconds"]} for r in rows],
                        columns=["standby", "measured on", "state", "synchronous", "lag (bytes)", "lag (s)"])
