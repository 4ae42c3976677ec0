"""The read-only ranking of a question: the gems that resonate, best first, with every score term.

Shared by ``python -m core search`` (core.cli.search prints it) and the REST API's
``POST /v1/lattices/{name}/search`` (core.api.routes.search), so that both rank alike. Nothing is
written: no observation, no entanglement; an in-memory copy of the lattice is evolved to the
time asked for. Two ways to read the lattice:

* from the store as stored (``Store.load_stored``): the CLI's one-shot read; a wall-clock
  lattice's catch-up is not written;
* from a Workbench's lattice cache (``lattices=``): a long-running server's read, which costs
  only what changed since the cached version (at 100k gems a whole read takes seconds, a cached
  one microseconds). The cache's refresh is the store's ``sync``, which writes nothing either: a
  wall-clock lattice is cached as stored and evolved here, on a copy, to the time asked for.

The cached path is the API's hot path, so it does per question only what the question needs
(issue 15: p95 under 50 ms at 100k gems): it ranks the cache's shared state (no copy; a later
time is computed on a copy, never written), the titles come from the cache (no database read),
and the result rows are built from the ranked gems directly (no pandas frame). What is left is
the similarity, one float32 matrix-vector product over all embeddings (memory-bound: 400 MB at
100k x 1024), and one version check (``Store.sync``). Both paths rank with the same functions on
the same values, so they return the same gems, scores and order (tests/service/
test_search_fast_path.py).

A lattice whose parameters say ``retriever=hybrid`` ranks with the hybrid retriever (BM25 and the
dates the question names fused with the similarity, core.knowledge.hybrid), exactly as a
reflection on it does (``core.knowledge.hybrid.rank_question``); its index comes from the
lattice cache (built once per content) or, for a one-shot read, from the store.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Callable

from core.errors import ValidationError


def target_time(at: str | None, info: Any, now: datetime | None = None) -> float:
    """The lattice time (time units) to rank at, from ``at``.

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


def _store_titles(store: Any, lattice: str, gem_ids: list[Any]) -> list[str]:
    """Display titles of ``gem_ids`` read from the store (a one-shot read: no cache to keep them)."""
    from core.service.titles import display_title

    texts = store.gem_texts(lattice, gem_ids)
    found = {gid: display_title(title, content)
             for gid, title, content in zip(texts["id"], texts["title"], texts["content"])}
    return [found.get(gid, "") for gid in gem_ids]


def search(store: Any, lattice: str, question: str, at: str | None = None, k: int | None = None, *,
           lattices: Any = None, embedder: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """The ranking of ``question`` in ``lattice`` at time ``at``.

    Parameters
    ----------
    store : Store
    lattice, question : str
    at : str, optional
        ``now`` (default), an ISO 8601 instant with a zone, or a lattice time (see :func:`target_time`).
    k : int, optional
        How many gems (>= 1; default the lattice's ``k``).
    lattices : LatticeCache, optional
        Read the lattice from this cache (a Workbench's) instead of the store.
    embedder : callable, optional
        ``embedder(name) -> Embedder`` (a Workbench's, loaded once per process); default
        ``core.knowledge.get_embedder``.

    Returns
    -------
    dict
        ``{"lattice", "t", "at", "clock", "gems_in_lattice", "scoring", "retriever", "k", "min_score",
        "gems", "empty_because"}``; each gem ``rank``, ``gem_id``, ``title`` and every column of
        ``Ranking.to_frame()`` (the hybrid's ``bm25``, ``date_match`` and ``fused`` too). Reads only.
    """
    from core.knowledge import explain_empty, get_embedder
    from core.knowledge.hybrid import rank_question
    from core.service.hybrid_index import store_hybrid_index

    if not isinstance(question, str) or not question.strip():
        raise ValidationError("question", "is empty; ask something")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValidationError("k", f"must be a whole number >= 1, got {k!r}")
    titles: Callable[[list[int]], list[str]]
    if lattices is not None:
        cached = lattices.read(lattice)  # the cache's shared state (never written here) and embeddings
        info, lat, embeddings = cached.info, cached.lattice, cached.embeddings
        index: Any = cached.hybrid_index  # built once per content, kept by the cache
        titles = cached.titles  # kept by the cache: no text is read per question
        evolve_copy = True
    else:
        loaded = store.load_stored(lattice)
        info, lat = loaded.info, loaded.lattice  # an independent copy of the stored state
        embeddings = None
        index = lambda: store_hybrid_index(store, lattice, lat.ids)  # noqa: E731  (a one-shot read)
        titles = lambda positions: _store_titles(store, lattice, [lat.ids[i] for i in positions])  # noqa: E731
        evolve_copy = False
    t = target_time(at, info)
    if t > lat.t:  # computed, not written: a copy of the shared state, or the store read's own copy
        lat = (lat.copy() if evolve_copy else lat).evolve(t - lat.t)
    params = info.params if k is None else info.params.replace(k=k)
    if embeddings is None:
        embeddings = loaded.embeddings()
    query = (embedder or get_embedder)(info.embedder).embed([question])[0]
    ranking = rank_question(query, question, embeddings, lat, params, index)
    # the rows of Ranking.to_frame(), built directly: every column of the ranking, as plain values
    terms = [c for c in ranking.columns if c not in ("rank", "gem_id")]
    shown = titles(ranking.indices) if len(ranking) else []
    rows = []
    for gem, title in zip(ranking.gems, shown):
        row = {"rank": int(gem.rank), "gem_id": gem.gem_id, "title": title}
        row.update({c: getattr(gem, c) for c in terms})
        rows.append(row)
    when = info.wall_time(t).isoformat() if info.epoch is not None else None
    return {"lattice": lattice, "t": t, "at": when, "clock": info.clock, "gems_in_lattice": len(lat),
            "scoring": params.scoring, "retriever": params.retriever, "k": params.k, "min_score": params.min_score, "gems": rows,
            "empty_because": explain_empty(ranking, params, lattice) if not rows else None}
