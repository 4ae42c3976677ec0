"""The "Fading soon" list of the Lattice page: gems whose coherence falls below the lattice's
``fade_below`` within a chosen span, soonest first (``core.engine.fading_soon``: closed form,
vectorised, a few ms at 1e5 gems; only the first rows are turned into a table).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.engine import PARAM_SPECS, Lattice, fading_soon, humanize_duration, parse_duration
from core.service import LatticeView, gem_titles

SPANS = ("1 day", "7 days", "30 days")
"""The spans offered, as durations (converted to the lattice's time unit)."""
MAX_ROWS = 50

FADING_COLUMNS = {
    "title": st.column_config.TextColumn(width=300),
    "coherence now": st.column_config.ProgressColumn("coherence now", min_value=0.0, max_value=1.0, format="%.3f",
                                                     width=130),
    "half-life": st.column_config.TextColumn(width=100, help="E·ln 2 / λ: this gem's own half-life."),
    "fades in": st.column_config.TextColumn(width=100, help="Time from now until its coherence reaches the "
                                                            "threshold, if nothing observes it."),
    "id": st.column_config.TextColumn(width=170),
}


def fading_table(view: LatticeView, span: str, limit: int = MAX_ROWS) -> tuple[pd.DataFrame, int]:
    """The first ``limit`` gems of ``view`` fading within ``span`` (soonest first) and how many
    there are in all. Durations are humanised in the lattice's time unit."""
    lattice: Lattice = view.lattice
    unit = lattice.params.time_unit
    idx, times = fading_soon(lattice, parse_duration(span, unit, "within"))
    head, when = idx[:limit], times[:limit]
    ids = [lattice.ids[i] for i in head.tolist()]
    if len(view.gems) == len(lattice) and view.gems["id"].iloc[head].tolist() == ids:
        titles = view.gems["title"].iloc[head].fillna("").astype(str).tolist()  # rows are in lattice order
        titles = [t or i for t, i in zip(titles, ids)]
    else:
        titles = gem_titles(view.gems, ids)
    lives = lattice.energy[head] * np.log(2.0) / lattice.params.lambda_ if lattice.params.lambda_ > 0 \
        else np.full(len(head), np.inf)
    table = pd.DataFrame({"title": titles, "coherence now": lattice.coherence[head],
                          "half-life": [humanize_duration(float(h), unit) for h in lives],
                          "fades in": [humanize_duration(float(d), unit) for d in when - lattice.t],
                          "id": ids})
    return table, int(idx.size)


def empty_reason(lattice: Lattice, span: str) -> str:
    """Why nothing fades within ``span``: no decay, everything already faded, or simply not yet."""
    p = lattice.params
    theta = p.fade_below
    text = f"No gem fades below {theta:g} within {span}"
    if len(lattice) == 0:
        return text + ": the lattice has no gems."
    below = int(np.count_nonzero(lattice.coherence <= theta))
    if p.lambda_ == 0:
        return text + f": {PARAM_SPECS['lambda_'].label} is 0 (no decay, preset {p.preset})."
    if theta == 0:
        return text + ": the threshold is 0, which decay never reaches."
    if below == len(lattice):
        return text + f": all {below} gems are already below it (observe or reset them to bring them back)."
    return (text + f" (half-life at E = 1: {p.half_life_text()})"
            + (f"; {below} gem(s) are already below it." if below else "."))


def render_fading(view: LatticeView, key: str = "lat_fading") -> None:
    """The span select, the count and the table (or the empty state saying why)."""
    lattice = view.lattice
    p = lattice.params
    c1, c2 = st.columns([1, 3])
    span = c1.selectbox("Fades within", SPANS, index=1, key=f"{key}_span",
                        help=f"Gems whose coherence falls below {PARAM_SPECS['fade_below'].label.lower()} = "
                             f"{p.fade_below:g} within this time if nothing observes them (closed form: "
                             f"t = E/λ · ln(c/threshold)).")
    table, total = fading_table(view, span)
    if not total:
        c2.info(empty_reason(lattice, span), icon=":material/check_circle:")
        return
    c2.markdown(f"**{total}** gem(s) fall below coherence {p.fade_below:g} within {span}"
                + (f"; the {len(table)} soonest are listed." if total > len(table) else ", soonest first.")
                + " Using a gem in a reflection re-coheres it.")
    st.dataframe(table, hide_index=True, key=f"{key}_table", column_config=FADING_COLUMNS,
                 height=min(38 + 35 * len(table), 600))
