"""A gem's own time on its Lattice-page card: its half-life ``E ln 2 / λ``, when it was created
and last observed (lattice time and UTC) and how often it was observed (``Store.gem_times``).
Times the store does not know (gems from before the upgrade that records them) say so.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.engine import LatticeParams, humanize_duration
from core.errors import LatticeError
from ui.text import plural

UNKNOWN = "unknown (before the upgrade)"


def _missing(value) -> bool:
    """None, NaN or NaT (a NULL read through pandas)."""
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # not a scalar
        return False


def _utc(value) -> str | None:
    if _missing(value):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M UTC")


def _moment(t, when, unit: str, now: float | None = None) -> str:
    """``"t = 12.5 hours, 3 days ago (2026-11-30 14:02 UTC)"`` (``now``: the lattice clock);
    the unknown halves said as such."""
    t_text = None if _missing(t) else f"t = {plural(float(t), unit)}"
    if t_text and now is not None and float(now) > float(t):
        t_text += f", {humanize_duration(float(now) - float(t), unit)} ago"
    utc = _utc(when)
    if t_text and utc:
        return f"{t_text} ({utc})"
    if t_text:
        return f"{t_text} (UTC {UNKNOWN})"
    if utc:
        return f"{utc} (lattice time {UNKNOWN})"
    return UNKNOWN


def times_lines(row: dict, unit: str, now: float | None = None) -> dict[str, str]:
    """``{Created, Last observed, Observations}`` texts of one row of ``Store.gem_times``
    (``now``: the lattice clock, for "3 days ago")."""
    count = row.get("observations")
    count = 0 if _missing(count) else int(count)
    never = count == 0 and _missing(row.get("observed_at")) and _missing(row.get("last_observed_t"))
    return {"Created": _moment(row.get("created_t"), row.get("created_at"), unit, now),
            "Last observed": "never" if never else _moment(row.get("last_observed_t"), row.get("observed_at"),
                                                           unit, now),
            "Observations": f"{count} time{'s' if count != 1 else ''} (direct uses since the upgrade)"}


def gem_half_life(params: LatticeParams, energy: float) -> str:
    """This gem's half-life, humanised in the lattice's time unit ("3.2 days", "∞")."""
    return params.half_life_text(float(energy))


def gem_times_panel(store, name: str, gem_id: str, unit: str, now: float | None = None) -> None:
    """The created / last observed / observations line of one gem (``now``: the lattice clock)."""
    try:
        df = store.gem_times(name, [gem_id])
    except LatticeError as exc:
        st.caption(f"Times not available: {exc}")
        return
    if df.empty:
        st.caption(f"Times: {UNKNOWN}.")
        return
    lines = times_lines(df.iloc[0].to_dict(), unit, now)
    st.markdown(" · ".join(f"**{k}:** {v}" for k, v in lines.items()))
