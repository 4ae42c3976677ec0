"""What one reflection produces: its record, its lattice update, and where both go (the sink)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from core.access import Actor
from core.engine.lattice import Observation


@dataclass
class ReflectionRecord:
    """Everything about one reflection (what the UI shows and the store records)."""

    id: str
    created_at: str  # ISO 8601, UTC
    user: str
    session_id: str
    lattice: str
    lattice_version: Any  # version the ranking was computed on
    question: str
    answer: str
    provider: str | None  # None when nothing resonated (no LLM call)
    model: str | None
    trace: list[dict]
    gems: list[dict]  # every ranked gem with its score terms, "included" and "skip_reason"
    latency_s: float
    first_token_s: float | None
    tokens: dict[str, Any]
    interrupted: bool = False
    nothing_resonated: bool = False
    observation: dict[str, list] = field(default_factory=dict)
    new_edges: list[tuple[Any, Any, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StateChange:
    """The lattice update of one reflection, as applied to the engine's lattice.

    A store adapter can replay it in one transaction, e.g.
    ``store.apply_reflection(name, change.used_gem_ids, change.actor, strength=change.eta,
    increment=change.edge_increment)``.
    """

    reflection_id: str
    actor: Actor
    used_gem_ids: tuple[Any, ...]  # the gems put in the prompt (observed with strength eta)
    used_indices: tuple[int, ...]
    observation: Observation  # every touched gem (used + entangled partners), before/after
    new_edges: tuple[tuple[int, int, float], ...]  # (i, j, new weight) of each co-used pair
    eta: float
    edge_increment: float


class ReflectionSink(Protocol):
    """Persistence the engine calls after an answer (a store adapter implements it).

    ``on_state_change`` must write the change (and its transaction log) or raise; if
    it raises, the engine rolls its in-memory lattice back and the error propagates.
    ``record`` stores the finished :class:`ReflectionRecord`.
    """

    def on_state_change(self, change: StateChange) -> None: ...

    def record(self, reflection: ReflectionRecord) -> None: ...


class MemorySink:
    """A :class:`ReflectionSink` that keeps everything in lists (tests, CLI without a store)."""

    def __init__(self) -> None:
        self.state_changes: list[StateChange] = []
        self.records: list[ReflectionRecord] = []

    def on_state_change(self, change: StateChange) -> None:
        self.state_changes.append(change)

    def record(self, reflection: ReflectionRecord) -> None:
        self.records.append(reflection)
