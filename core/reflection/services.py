"""What a reflection engine uses beyond its lattice, in one object (every part has a default)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from core.errors import LatticeError
from core.knowledge.cache import ResonanceCache
from core.monitoring.latency import LatencySeries
from core.reflection.conversation import ConversationStore
from core.reflection.prompt import PromptBudget
from core.reflection.ratelimit import UserRateLimiter
from core.reflection.records import MemorySink, ReflectionSink
from core.reflection.tokens import TokenCounter, get_token_counter
from core.router import LLMRouter, build_router


@dataclass(frozen=True)
class ReflectionServices:
    """The collaborators and settings of a :class:`~core.reflection.engine.ReflectionEngine`.

    A field left ``None`` gets its default when the object is made. One object can serve
    every engine of a process (the Workbench's), so that the cache, the router's
    cooldowns, the rate limits, the conversations and the latency series outlive a single
    engine; ``dataclasses.replace(services, sink=...)`` gives one engine its own sink.

    Parameters
    ----------
    router : LLMRouter, optional
        Default :func:`core.router.build_router` (from the environment).
    sink : ReflectionSink, optional
        Persistence; default :class:`~core.reflection.records.MemorySink`.
    cache : ResonanceCache, optional
        Shared resonance cache; default a private one.
    rate_limiter : UserRateLimiter, optional
        Default 10 reflections per 60 s per user.
    counter : TokenCounter, optional
        Default :func:`~core.reflection.tokens.get_token_counter`.
    conversations : ConversationStore, optional
        Default one counting with ``counter``.
    latency : LatencySeries, optional
        Reflection latencies (seconds); default a new series.
    budget : PromptBudget, optional
    dedup_threshold : float
        Cosine above which a gem is a near-duplicate of an included one.
    stale_uncertainty : float
        Uncertainty at or above which a gem is flagged as possibly outdated.
    entangle_increment : float
        Weight added to each co-used pair's entanglement, in (0, 1].
    clock : callable
        Monotonic seconds for latencies (injectable).
    wall : callable
        Epoch seconds for timestamps (injectable).
    """

    router: LLMRouter | None = None
    sink: ReflectionSink | None = None
    cache: ResonanceCache | None = None
    rate_limiter: UserRateLimiter | None = None
    counter: TokenCounter | None = None
    conversations: ConversationStore | None = None
    latency: LatencySeries | None = None
    budget: PromptBudget | None = None
    dedup_threshold: float = 0.95
    stale_uncertainty: float = 0.5
    entangle_increment: float = 0.1
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if not 0.0 < self.entangle_increment <= 1.0:
            raise LatticeError(f"entangle_increment must be in (0, 1], got {self.entangle_increment}")
        counter = self.counter or get_token_counter()
        defaults = {
            "router": self.router or build_router(),
            "sink": self.sink if self.sink is not None else MemorySink(),
            "cache": self.cache if self.cache is not None else ResonanceCache(),
            "rate_limiter": self.rate_limiter or UserRateLimiter(),
            "counter": counter,
            "conversations": self.conversations if self.conversations is not None
            else ConversationStore(counter=counter),
            # injectable so that a process-wide series outlives one engine (Metrics page)
            "latency": self.latency if self.latency is not None else LatencySeries(),
            "budget": self.budget or PromptBudget(),
            "dedup_threshold": float(self.dedup_threshold),
            "stale_uncertainty": float(self.stale_uncertainty),
            "entangle_increment": float(self.entangle_increment),
        }
        for name, value in defaults.items():
            object.__setattr__(self, name, value)
