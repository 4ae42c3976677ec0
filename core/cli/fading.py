"""``python -m core fading``: the gems that fall below a coherence threshold soon (the seed's
"monitors coherence", as a forecast). Read-only: a wall-clock lattice is brought to now on
an in-memory copy, and nothing is written.
"""
from __future__ import annotations

import argparse
import math

from core.cli.common import add_json_and_handler, emit, open_store

DEFAULT_WITHIN = "7d"


def fading_rows(loaded, within: str, threshold: float | None) -> dict:
    """The forecast of ``loaded`` (a ``Store.load`` result): gems above the threshold now that
    reach it within ``within`` (a duration in the lattice's time unit, as ``parse_duration``
    reads it), soonest first, with everything the table shows."""
    import numpy as np

    from core.engine import fading_soon, humanize_duration, parse_duration

    lat, info = loaded.lattice, loaded.info
    unit = lat.params.time_unit
    span = parse_duration(within, unit, "--within")
    theta = lat.params.fade_below if threshold is None else threshold
    idx, times = fading_soon(lat, span, theta)  # ValidationError for a threshold outside [0, 1]
    ids = [lat.ids[i] for i in idx.tolist()]
    titles = loaded.store.gem_texts(loaded.name, ids)["title"].fillna("").astype(str).tolist() if ids else []
    lives = lat.params.half_life(lat.energy[idx])
    epoch = getattr(info, "epoch", None)  # UTC of lattice time 0 (older stores: unknown)
    gems = []
    for k, gid in enumerate(ids):
        at, left, life = float(times[k]), float(times[k] - lat.t), float(lives[k])
        gems.append({"id": gid, "title": titles[k] or gid, "coherence": float(lat.coherence[idx[k]]),
                     "energy": float(lat.energy[idx[k]]), "half_life": life if math.isfinite(life) else None,
                     "half_life_text": humanize_duration(life, unit), "fades_at_t": at,
                     "fades_at_utc": info.wall_time(at).isoformat() if epoch is not None else None,
                     "time_left": left, "time_left_text": humanize_duration(left, unit)})
    faded = int(np.count_nonzero(lat.coherence <= theta))
    return {"lattice": loaded.name, "t": float(lat.t), "time_unit": unit, "clock": info.clock,
            "threshold": float(theta), "within": span, "within_text": humanize_duration(span, unit),
            "faded_now": faded, "gems_total": len(lat), "fading": len(gems), "gems": gems,
            "why_none": "" if gems else _why_none(lat, theta, faded)}


def _why_none(lat, theta: float, faded: int) -> str:
    """Why no gem fades within the span, in words (the empty list must not look like an error)."""
    if len(lat) == 0:
        return "the lattice has no gems"
    if faded == len(lat):
        return "every gem is already at or below it (observe them, or reset the demo)"
    if lat.params.lambda_ == 0:
        return f"nothing decays: decay scale λ is 0 (preset {lat.params.preset})"
    if theta == 0:
        return "coherence decays towards 0 but never reaches it"
    return f"the first one needs longer (half-life at E = 1: {lat.params.half_life_text()})"


def as_of_now(loaded):
    """``loaded`` (read as stored) with a wall-clock lattice evolved to now on its in-memory
    copy only, in one step as the store's own catch-up takes it: nothing is written."""
    from datetime import datetime, timezone

    lat, info = loaded.lattice, loaded.info
    if info.clock == "wall" and info.epoch is not None:
        elapsed = info.lattice_time(datetime.now(timezone.utc)) - lat.t
        if elapsed > 0:
            lat.evolve(elapsed)
    return loaded


def cmd_fading(args: argparse.Namespace) -> int:
    with open_store() as store:
        data = fading_rows(as_of_now(store.load_stored(args.lattice)), args.within, args.threshold)
    head = (f"lattice {data['lattice']}: {data['fading']} of {data['gems_total']} gems fall below coherence "
            f"{data['threshold']:g} within {data['within_text']} (t = {data['t']:g} {data['time_unit']}s; "
            f"{data['faded_now']} already at or below it)")
    if not data["gems"]:
        emit(args, data, f"{head}: {data['why_none']}")
        return 0
    lines = [head, "", f"{'fades in':>10}  {'coherence':>9}  {'energy':>7}  {'half-life':>10}  "
                       f"{'fades at (t)':>12}  {'fades at (UTC)':<25}  gem: title"]
    for g in data["gems"]:
        utc = g["fades_at_utc"][:19].replace("T", " ") + "Z" if g["fades_at_utc"] else "-"
        lines.append(f"{g['time_left_text']:>10}  {g['coherence']:>9.4f}  {g['energy']:>7.3g}  "
                     f"{g['half_life_text']:>10}  {g['fades_at_t']:>12.6g}  {utc:<25}  {g['id']}: {g['title']}")
    emit(args, data, lines)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fading", help="gems whose coherence falls below a threshold soon, soonest first "
                                      "(read-only)")
    p.add_argument("--lattice", required=True, help="lattice name")
    p.add_argument("--within", default=DEFAULT_WITHIN,
                   help=f"time span from now, e.g. 36h, 7d, 2w or a number of lattice time units "
                        f"(default {DEFAULT_WITHIN})")
    p.add_argument("--threshold", type=float, default=None,
                   help="coherence threshold in [0, 1] (default: the lattice's fade_below parameter)")
    add_json_and_handler(p, cmd_fading, "the forecast")
