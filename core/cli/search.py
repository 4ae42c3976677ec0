"""``python -m core search QUESTION --lattice NAME [--at TIME] [--k N] [--json]``: the ranking, read only.

Prints the gems that resonate with QUESTION, best first, with every score term the ranking has
(the columns of ``Ranking.to_frame()``, whatever the scoring rule adds), gem ids and titles,
without reflecting and without changing any state: the lattice is read as stored (a wall-clock
lattice's catch-up is not written) and an in-memory copy is evolved to the time asked for.
"""
from __future__ import annotations

import argparse
import math
from datetime import datetime, timezone
from typing import Any

from core.cli.common import add_json_and_handler, emit, open_store
from core.errors import ValidationError


def target_time(at: str | None, info: Any, now: datetime | None = None) -> float:
    """The lattice time (time units) to rank at, from ``--at``.

    ``None`` or ``"now"``: a wall lattice's present (its clock caught up to now through its
    epoch); a manual lattice's clock (its present is where simulate/advance left it). An ISO
    8601 instant with a zone maps through the lattice's epoch; a number is a lattice time. A
    time before the lattice clock is an error (the state before it is not kept: replay a
    snapshot with ``Store.replay_to``).
    """
    now = now or datetime.now(timezone.utc)
    text = "now" if at is None else str(at).strip()
    if text.lower() == "now":
        return max(info.t, info.lattice_time(now)) if info.clock == "wall" else info.t
    try:
        t = float(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError("at", f"got {at!r}; give an ISO 8601 instant with a time zone "
                                        "(2026-03-01T12:00:00Z), a lattice time number, or now") from None
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValidationError("at", f"{at!r} has no time zone; add Z (UTC) or +hh:mm")
        t = info.lattice_time(when)
    if not math.isfinite(t):
        raise ValidationError("at", f"got {at!r}; a lattice time must be a finite number")
    clock = max(info.t, info.lattice_time(now)) if info.clock == "wall" else info.t
    if t < clock - 1e-9 * max(1.0, abs(clock)):
        raise ValidationError("at", f"t={t:.6g} is before the lattice clock (t={clock:.6g}); search ranks the "
                                    "lattice now or later (an earlier state: restore or replay a snapshot)")
    return t


def search(store: Any, lattice: str, question: str, at: str | None = None, k: int | None = None) -> dict[str, Any]:
    """The ranking of ``question`` in ``lattice`` at time ``at``: ``{"lattice", "t", "at", "gems": [...]}``,
    each gem ``rank``, ``gem_id``, ``title`` and every column of ``Ranking.to_frame()``. Reads only."""
    from core.knowledge import explain_empty, get_embedder, resonance

    if not isinstance(question, str) or not question.strip():
        raise ValidationError("question", "is empty; ask something")
    loaded = store.load_stored(lattice)
    info, lat = loaded.info, loaded.lattice
    t = target_time(at, info)
    if t > lat.t:
        lat.evolve(t - lat.t)  # the in-memory copy only
    params = info.params if k is None else info.params.replace(k=k)
    embeddings = loaded.embeddings()
    query = get_embedder(info.embedder).embed([question])[0]
    ranking = resonance(query, embeddings, lat, params)
    frame = ranking.to_frame()
    titles: dict[Any, str] = {}
    if len(frame):
        texts = store.gem_texts(lattice, list(frame["gem_id"]))
        for gid, title, content in zip(texts["id"], texts["title"], texts["content"]):
            title = str(title or "").strip()
            titles[gid] = title or (str(content or "").strip().splitlines() or [""])[0][:80]
    rows = []
    for rec in frame.to_dict(orient="records"):
        gid = rec.pop("gem_id")
        row = {"rank": int(rec.pop("rank")), "gem_id": gid, "title": titles.get(gid, "")}
        row.update({key: (value.item() if hasattr(value, "item") else value) for key, value in rec.items()})
        rows.append(row)
    when = info.wall_time(t).isoformat() if info.epoch is not None else None
    return {"lattice": lattice, "t": t, "at": when, "clock": info.clock, "gems_in_lattice": len(lat),
            "scoring": params.scoring, "k": params.k, "min_score": params.min_score, "gems": rows,
            "empty_because": explain_empty(ranking, params, lattice) if not rows else None}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(result: dict[str, Any]) -> list[str]:
    """The ranking as text lines: a header naming the lattice and time, then one row per gem
    (rank, id, every score term, the title last)."""
    head = (f"lattice {result['lattice']!r} at t={result['t']:.6g}" + (f" ({result['at']})" if result["at"] else "")
            + f", scoring {result['scoring']}, k={result['k']}, min_score {result['min_score']:g}")
    gems = result["gems"]
    if not gems:
        return [head, f"no gem returned ({result['gems_in_lattice']} gems in the lattice): {result['empty_because']}"]
    terms = [key for key in gems[0] if key not in ("rank", "gem_id", "title", "index")]
    cols = ["rank", "gem_id", *terms, "title"]
    cells = [[_cell(g.get(c, "")) for c in cols] for g in gems]
    widths = [max(len(c), *(len(row[j]) for row in cells)) for j, c in enumerate(cols)]
    widths[-1] = len(cols[-1])  # the title is last and not padded
    line = lambda values: "  ".join(v.ljust(w) if j < len(cols) - 1 else v  # noqa: E731
                                    for j, (v, w) in enumerate(zip(values, widths)))
    return [head, line(cols), *(line(row) for row in cells)]


def cmd_search(args: argparse.Namespace) -> int:
    if args.k is not None and args.k < 1:
        raise ValidationError("k", f"must be at least 1, got {args.k}")
    with open_store() as store:
        result = search(store, args.lattice, args.question, args.at, args.k)
    emit(args, result["gems"], table(result))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="rank the gems for a question without reflecting or changing anything",
                       description="Print the gems that resonate with QUESTION, best first, with every score "
                                   "term, their ids and titles. Nothing is written: no observation, no "
                                   "entanglement, no wall-clock catch-up.")
    p.add_argument("question", help="the question to rank the gems for")
    p.add_argument("--lattice", required=True, help="lattice name")
    p.add_argument("--at", default=None,
                   help="rank the lattice as it will be at this time: an ISO 8601 instant with a zone "
                        "(2026-03-01T12:00:00Z), a lattice time number, or now (default); not before its clock")
    p.add_argument("--k", type=int, default=None, help="how many gems (default: the lattice's k)")
    add_json_and_handler(p, cmd_search, "the ranked gems (a list of objects)")
