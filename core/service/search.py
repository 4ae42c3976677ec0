"""The read-only ranking of a question: the gems that resonate, best first, with every score term.

Shared by ``python -m core search`` (core.cli.search prints it) and the REST API's
``POST /v1/lattices/{name}/search`` (core.api.routes.search), so that both rank alike. Nothing is
written: no observation, no entanglement; an in-memory copy of the lattice is evolved to the
time asked for. Two ways to read the lattice:

* from the store as stored (``Store.load_stored``): the CLI's one-shot read; a wall-clock
  lattice's catch-up is not written;
* from a Workbench's lattice cache (``lattices=``): a long-running server's read, which costs
  only what changed since the cached version (at 100k gems a whole read takes seconds, a cached
  one microseconds). The cache's refresh is the store's ``sync``, which, as every other read of
  a wall-clock lattice by the app (``Store.info``, a reflection), catches its clock up to now.

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
    if lattices is not None:
        cached = lattices.get(lattice)  # a private copy of the state; embeddings shared read-only
        info, lat, embeddings = cached.info, cached.lattice, cached.embeddings
        index: Any = cached.hybrid_index  # built once per content, kept by the cache
    else:
        loaded = store.load_stored(lattice)
        info, lat = loaded.info, loaded.lattice
        embeddings = None
        index = lambda: store_hybrid_index(store, lattice, lat.ids)  # noqa: E731  (a one-shot read)
    t = target_time(at, info)
    if t > lat.t:
        lat.evolve(t - lat.t)  # the in-memory copy only
    params = info.params if k is None else info.params.replace(k=k)
    if embeddings is None:
        embeddings = loaded.embeddings()
    query = (embedder or get_embedder)(info.embedder).embed([question])[0]
    ranking = rank_question(query, question, embeddings, lat, params, index)
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
            "scoring": params.scoring, "retriever": params.retriever, "k": params.k, "min_score": params.min_score, "gems": rows,
            "empty_because": explain_empty(ranking, params, lattice) if not rows else None}
