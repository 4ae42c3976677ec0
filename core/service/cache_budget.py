"""The lattice cache's memory budget (core.service.lattice_cache): ``LATTICE_CACHE_MB``.

The cache keeps lattices least recently used first out while their bytes (embeddings, state,
hybrid index, texts and titles) exceed the budget; a lattice bigger than the budget is served
without being kept.
"""
from __future__ import annotations

import math
import os

from core.errors import ValidationError

BUDGET_ENV = "LATTICE_CACHE_MB"
DEFAULT_BUDGET_MB = 2048


def budget_from_env(env: dict[str, str] | None = None) -> int:
    """The cache's byte budget from ``LATTICE_CACHE_MB`` (megabytes, >= 0; 0 keeps nothing)."""
    raw = (os.environ if env is None else env).get(BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_BUDGET_MB * 2**20
    try:
        mb = float(raw)
    except ValueError:
        raise ValidationError(BUDGET_ENV, f"got {raw!r}; give the lattice cache's budget in megabytes, "
                                          f"e.g. {DEFAULT_BUDGET_MB}") from None
    if not (mb >= 0 and math.isfinite(mb)):
        raise ValidationError(BUDGET_ENV, f"got {raw!r}; must be a number of megabytes >= 0")
    return int(mb * 2**20)
