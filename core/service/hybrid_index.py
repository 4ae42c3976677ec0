"""The hybrid retriever's index of a stored lattice: BM25 over every gem's title and content and
the UTC day each gem was created on (``Store.gem_times``), in lattice order.

Built once per lattice content (the lattice cache keeps it beside the embeddings and rebuilds it
only when gems are added, archived or their text changes; core.service.lattice_cache), or once
per call by a one-shot read (``python -m core search``). Reads two columns' worth of every
active gem: at 100k gems about a second (benchmarks/hybrid_live.py), never per question.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

import pandas as pd

from core.knowledge.hybrid import HybridIndex, gem_text


def _in_order(df: pd.DataFrame, key: str, ids: list[str]) -> pd.DataFrame:
    """``df`` in the order of ``ids``: the active gems come in seq order, which is lattice order
    whenever nothing changed between the reads; otherwise re-indexed (a gem archived since:
    an empty row, whose text is then "" and day unknown until the cache rebuilds)."""
    if list(df[key]) == ids:
        return df
    return df.set_index(key).reindex(ids).reset_index()


def store_hybrid_index(store: Any, name: str, ids: Sequence[str]) -> HybridIndex:
    """The :class:`HybridIndex` of lattice ``name``'s gems ``ids`` (lattice order), from the store."""
    ids = [str(g) for g in ids]
    texts = _in_order(store.gem_texts(name), "id", ids)
    times = _in_order(store.gem_times(name), "gem_id", ids)
    created: list[datetime | None] = [None if pd.isna(t) else pd.Timestamp(t).to_pydatetime()
                                      for t in times["created_at"]]
    return HybridIndex([gem_text(t, c) for t, c in zip(texts["title"], texts["content"])], created)
