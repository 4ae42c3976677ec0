"""``python -m core search QUESTION --lattice NAME [--at TIME] [--k N] [--json]``: the ranking, read only.

Prints the gems that resonate with QUESTION, best first, with every score term the ranking has
(the columns of ``Ranking.to_frame()``, whatever the scoring rule adds), gem ids and titles,
without reflecting and without changing any state: the lattice is read as stored (a wall-clock
lattice's catch-up is not written) and an in-memory copy is evolved to the time asked for.
The ranking is ``core.service.search`` (shared with the REST API); this module parses and prints.
"""
from __future__ import annotations

import argparse
from typing import Any

from core.cli.common import add_json_and_handler, emit, open_store
from core.errors import ValidationError


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
    from core.service import search  # the ranking itself, shared with the REST API
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
