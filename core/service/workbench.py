"""The process-wide services of a front end (or the CLI) over one store.

One :class:`Workbench` per process holds what must outlive a single request: the
store, the lattice cache (state, embeddings and texts in memory, core.service.lattice_cache),
the resonance cache, the LLM router with its cooldowns, the rate limits (per identity,
shared by every node through Redis when LATTICE_REDIS_URL is set: core.service.rate_limits),
the conversations and the reflection latency series. A reflection takes the lattice at its
current version from the lattice cache (one read of what changed), ranks (through the
resonance cache, keyed by that version), answers, and writes the state change back
through :class:`StoreSink`. Several processes (nodes) can each hold a Workbench over the
same PostgreSQL store: both caches follow the shared lattice version, so none serves a
stale lattice or ranking.
"""
from __future__ import annotations

import threading
from typing import Any

from core.access import Actor
from core.knowledge.base import Embedder
from core.knowledge.cache import ResonanceCache
from core.knowledge.registry import get_embedder
from core.monitoring.latency import LatencySeries
from core.monitoring.prometheus import WorkbenchCollector, fading_summary
from core.reflection.conversation import ConversationStore
from core.reflection.engine import Reflection, ReflectionEngine
from core.reflection.ratelimit import RateLimiter
from core.reflection.records import ReflectionRecord, StateChange
from core.reflection.services import ReflectionServices
from core.service.lattice_cache import LatticeCache
from core.service.rate_limits import RateLimits
from core.service.sources import stored_at_now
from core.router import LLMRouter, build_router
from core.store import Store


class StoreSink:
    """Writes one reflection's outcome to the store (the engine's ReflectionSink).

    The state change and the record go to the store together, in one transaction, when
    the record arrives (the engine reports the change first, then the record): one write
    per reflection instead of two, and never a re-coherence without its record.
    """

    def __init__(self, store: Store, name: str, actor: Actor):
        self.store, self.name, self.actor = store, name, actor
        self.applied: dict[str, Any] | None = None  # what apply_reflection reported
        self.record_id: int | None = None
        self._change: StateChange | None = None

    def on_state_change(self, change: StateChange) -> None:
        # Re-applied to the stored state (observe + entangle + log) with the record, so a
        # concurrent write between load and answer is never overwritten.
        self._change = change

    def record(self, rec: ReflectionRecord) -> None:
        fields = dict(query=rec.question, answer=rec.answer, provider_trace=rec.trace, gems_used=rec.gems,
                      latency_ms=rec.latency_s * 1000.0, tokens_in=rec.tokens.get("prompt"),
                      tokens_out=rec.tokens.get("completion"))
        change, self._change = self._change, None
        if change is None:  # nothing resonated, or an interrupted answer: a record only
            self.record_id = self.store.record_reflection(self.name, self.actor, **fields)
            return
        self.applied = self.store.apply_reflection(self.name, list(change.used_gem_ids), change.actor,
                                                   strength=change.eta, increment=change.edge_increment,
                                                   reflection=fields)
        self.record_id = self.applied["reflection_id"]


class Workbench:
    """Store + shared cache, router, rate limits, conversations and latency series.

    ``rate_limits`` (default :meth:`RateLimits.from_env`) holds the API's per-request limit
    and the reflections limit; ``rate_limiter`` is what reflections acquire: the given
    one, or ``rate_limits.reflections``.
    """

    def __init__(self, store: Store, *, router: LLMRouter | None = None, cache: ResonanceCache | None = None,
                 rate_limiter: RateLimiter | None = None, lattices: LatticeCache | None = None,
                 rate_limits: RateLimits | None = None):
        self.store = store
        self.lattices = lattices or LatticeCache(store)
        self.router = router or build_router()
        self.cache = cache or ResonanceCache()
        self.rate_limits = rate_limits or RateLimits.from_env()
        self.rate_limiter = rate_limiter or self.rate_limits.reflections
        self.conversations = ConversationStore()
        self.latency = LatencySeries()
        self._embedders: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    def embedder(self, name: str) -> Embedder:
        with self._lock:
            if name not in self._embedders:
                self._embedders[name] = get_embedder(name)
            return self._embedders[name]

    def services(self, sink: StoreSink) -> ReflectionServices:
        """This process's shared services (as the attributes are now) with one engine's sink."""
        return ReflectionServices(router=self.router, sink=sink, cache=self.cache, rate_limiter=self.rate_limiter,
                                  conversations=self.conversations, latency=self.latency)

    def engine(self, name: str, actor: Actor) -> tuple[ReflectionEngine, StoreSink]:
        """A reflection engine on lattice ``name`` at its current version (from the lattice cache)."""
        cached = self.lattices.get(name)
        sink = StoreSink(self.store, name, actor)
        engine = ReflectionEngine(
            cached.lattice, cached.texts, cached.embeddings, self.embedder(cached.info.embedder),
            self.services(sink), embedder_name=cached.info.embedder, params=cached.info.params,
            lattice_name=name, version=cached.version)
        return engine, sink

    def reflect(self, name: str, question: str, actor: Actor, session_id: str = "default") -> Reflection:
        """Start a reflection (iterate it to stream; ``.record`` afterwards). Raises at once
        on permission, rate limit, unknown lattice or an empty question."""
        engine, _ = self.engine(name, actor)
        return engine.reflect(question, actor, session_id)

    def metrics(self) -> dict[str, Any]:
        """Reflection latency p50/p95, resonance and lattice cache statistics, per-provider router
        metrics, rate limits (storage, degraded, refusals)."""
        return {"reflection_latency": self.latency.summary(), "cache": self.cache.stats().to_dict(),
                "lattice_cache": self.lattices.stats(), "router": self.router.metrics_snapshot(),
                "rate_limits": self.rate_limits.stats()}

    def collector(self) -> WorkbenchCollector:
        """Prometheus collector over this workbench (see core.monitoring.prometheus)."""
        def lattices() -> dict[str, dict]:
            out = {}
            for info in self.store.list_lattices():
                # a kept lattice costs only what changed; the others are read, not kept (a scrape
                # must not fill the cache with lattices nobody asks about)
                # read only: a wall lattice is evolved to now in memory (the private view, or a copy
                # of the stored state), so a scrape writes nothing
                lat = (self.lattices.get(info.name).lattice if self.lattices.holds(info.name)
                       else stored_at_now(self.store.load_stored(info.name)))
                out[info.name] = {**lat.summary(), **fading_summary(lat)}
            return out
        return WorkbenchCollector(lattices, self.cache, self.router, self.latency)
