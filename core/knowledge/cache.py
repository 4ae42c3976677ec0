"""Resonance cache: a thread-safe LRU of rankings with hit/miss/eviction statistics.

The key is a SHA-256 of everything a ranking depends on: the query embedding's bytes
(dtype and shape included), the lattice name and version, every model parameter (the
retriever among them) and the embedder name; under the hybrid retriever the question's text too. Any write to a lattice bumps its version, so a ranking computed
before the write is never served after it (also across app processes: each keeps
its own cache, keyed by the shared version). Streamlit serves sessions from threads,
so every access holds a lock.

Statistics: cumulative hits, misses, evictions, current size and hit ratio, plus a
time series sampled on every lookup (bounded) for the Metrics page.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Callable, Hashable

import numpy as np
import pandas as pd
from cachetools import LRUCache

from core.errors import LatticeError
from core.engine.params import LatticeParams

DEFAULT_MAXSIZE = 1000


class _CountingLRU(LRUCache):
    """cachetools' LRUCache that counts evictions (popitem is how it evicts)."""

    def __init__(self, maxsize: int):
        super().__init__(maxsize)
        self.evictions = 0

    def popitem(self):
        item = super().popitem()
        self.evictions += 1
        return item


@dataclass(frozen=True)
class CacheStats:
    """Cumulative counters at one moment; ``hit_ratio`` = hits / (hits + misses), 0 if none."""

    time: float  # seconds (the cache's clock, default time.time)
    hits: int
    misses: int
    evictions: int
    size: int
    maxsize: int

    @property
    def hit_ratio(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hit_ratio": self.hit_ratio}


def cache_key(query_embedding: np.ndarray, lattice_name: str, lattice_version: int | str,
              params: LatticeParams, embedder_name: str, question: str | None = None) -> str:
    """The cache key of one ranking (hex SHA-256).

    Parameters
    ----------
    query_embedding : ndarray
        The query vector; its raw bytes, dtype and shape are hashed.
    lattice_name : str
    lattice_version : int or str
        Bumped by every write to the lattice's state, gems or edges.
    params : LatticeParams
        All parameters are hashed (not only the ranking ones: cheap and safe), so the
        scoring rule, its coherence floor and weights, alpha, beta, k and min_score all
        change the key.
    embedder_name : str
    question : str, optional
        The question's text, hashed when given: a ``hybrid`` ranking (``params.retriever``)
        reads the words and dates of the text, which two texts with one embedding (a hashing
        collision, "May 2nd" and "2 May") need not share. The retriever itself is a parameter.
    """
    q = np.ascontiguousarray(query_embedding)
    h = hashlib.sha256()
    h.update(f"{q.dtype.str}|{q.shape}|".encode())
    h.update(q.tobytes())
    meta = json.dumps({"lattice": lattice_name, "version": str(lattice_version),
                       "params": params.to_dict(), "embedder": embedder_name}, sort_keys=True)
    if question is not None:
        meta += "|question:" + json.dumps(question)
    h.update(meta.encode())
    return h.hexdigest()


class ResonanceCache:
    """Thread-safe LRU of resonance rankings with statistics.

    Parameters
    ----------
    maxsize : int
        Most rankings kept (default 1000, as in the seed); the least recently used
        is evicted beyond it.
    clock : callable
        Returns seconds; stamps the statistics samples (injectable for tests).
    history : int
        Most samples kept in the time series (one per lookup, oldest dropped).
    """

    def __init__(self, maxsize: int = DEFAULT_MAXSIZE, clock: Callable[[], float] = time.time,
                 history: int = 5000):
        if int(maxsize) < 1:
            raise LatticeError(f"cache maxsize must be >= 1, got {maxsize}")
        self._lru = _CountingLRU(int(maxsize))
        self._lock = threading.RLock()
        self._clock = clock
        self._hits = 0
        self._misses = 0
        self._history: deque[CacheStats] = deque(maxlen=int(history))

    @property
    def maxsize(self) -> int:
        return int(self._lru.maxsize)

    def _sample(self) -> None:
        self._history.append(self._stats_locked())

    def _stats_locked(self) -> CacheStats:
        return CacheStats(self._clock(), self._hits, self._misses, self._lru.evictions,
                          len(self._lru), self.maxsize)

    def get(self, key: Hashable) -> Any | None:
        """The cached value (a hit) or None (a miss); counts either."""
        with self._lock:
            try:
                value = self._lru[key]
            except KeyError:
                self._misses += 1
                value = None
            else:
                self._hits += 1
            self._sample()
            return value

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value`` (evicting the least recently used entry when full)."""
        if value is None:
            raise LatticeError("cannot cache None (it means 'missing')")
        with self._lock:
            self._lru[key] = value

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """Return the cached value or compute, store and return it.

        ``compute`` runs outside the lock (a slow ranking does not block other
        sessions); two threads missing the same key at once may both compute it,
        which is harmless since rankings are pure.
        """
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._lru

    def __len__(self) -> int:
        with self._lock:
            return len(self._lru)

    def clear(self) -> None:
        """Drop every entry (counters and history are kept)."""
        with self._lock:
            self._lru.clear()

    def stats(self) -> CacheStats:
        """Current counters (hits, misses, evictions, size, maxsize, hit_ratio)."""
        with self._lock:
            return self._stats_locked()

    def history(self) -> list[CacheStats]:
        """The time series of samples, oldest first."""
        with self._lock:
            return list(self._history)

    def history_frame(self) -> pd.DataFrame:
        """The time series as a DataFrame: time, hits, misses, evictions, size, maxsize, hit_ratio."""
        rows = [s.to_dict() for s in self.history()]
        cols = ["time", "hits", "misses", "evictions", "size", "maxsize", "hit_ratio"]
        return pd.DataFrame(rows, columns=cols)
