"""A gem's display title, as a search shows it, and the titles of a whole lattice in one read.

The title is the gem's own title, else the first line of its content (at most 80 characters),
else "". The lattice cache (core.service.lattice_cache) keeps them per gem, so that a search
reads no text from the database: reading the titles of the 10 ranked gems cost 3-7 ms of a
search at 100k gems (SQLite), reading all of them once about 2 s.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TITLE_CHARS = 80  # of the content's first line, for a gem without a title


def display_title(title: Any, content: Any) -> str:
    """``title`` stripped, else the first line of ``content`` cut to 80 characters, else "".
    None and NaN (a gem missing from a read) count as empty."""
    def text(v: Any) -> str:
        return "" if v is None or (isinstance(v, float) and v != v) else str(v)
    own = text(title).strip()
    return own or (text(content).strip().splitlines() or [""])[0][:TITLE_CHARS]


def titles_by_pk(texts: pd.DataFrame, pk_of: dict[str, int]) -> dict[int, str]:
    """``{pk: display title}`` of the rows of ``texts`` (``Store.gem_texts``: id, title, content)
    whose gem id is in ``pk_of`` (gem id -> primary key); other rows are left out."""
    out: dict[int, str] = {}
    ids, titles, contents = (texts[c].tolist() for c in ("id", "title", "content"))
    for gid, title, content in zip(ids, titles, contents):
        pk = pk_of.get(gid)
        if pk is not None:
            out[pk] = display_title(title, content)
    return out


def titles_nbytes(titles: dict[int, str] | None) -> int:
    """Approximate memory of a title table, in bytes: the characters and ~100 bytes a slot."""
    if not titles:
        return 0
    return int(sum(len(t) for t in titles.values()) + 100 * len(titles))


def pk_lookup(ids: list[Any], pks: np.ndarray, positions: list[int] | None = None) -> dict[str, int]:
    """gem id -> primary key for the gems at ``positions`` (default: all), from the lattice's
    ``ids`` and ``pks`` (both in lattice order)."""
    if positions is None:
        return dict(zip(ids, pks.tolist()))
    return {ids[i]: int(pks[i]) for i in positions}
