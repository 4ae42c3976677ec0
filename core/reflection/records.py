"""What one reflection produces: its record, its lattice update, and where both go (the sink)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from core.access import Actor
from core.engine.lattice import Observation
from core.knowledge.resonance import Ranking


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
    gems: list[dict]  # every ranked gem with its rule's score terms, "included" and "skip_reason"
    latency_s: float
    first_token_s: float | None
    tokens: dict[str, Any]
    interrupted: bool = False
    nothing_resonated: bool = False
    observation: dict[str, list] = field(default_factory=dict)
    new_edges: list[tuple[Any, Any, float]] = field(default_factory=list)
    ranking: dict[str, Any] = field(default_factory=dict)  # ranking_summary: the rule and, if empty, why

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ranking_summary(ranking: Ranking, explanation: str = "") -> dict[str, Any]:
    """What a record keeps of its ranking besides the gems: the scoring rule and its figures
    (gems in the lattice, how many pass min_score on similarity, the best similarity and
    score) and, when nothing was returned, ``explanation`` (core.knowledge.explain_empty)."""
    out = {"scoring": ranking.scoring, "k": ranking.k, "min_score": ranking.min_score, "n_gems": ranking.n_gems,
           "n_similar": ranking.n_similar, "best_similarity": ranking.best_similarity,
           "best_resonance": ranking.best_resonance}
    if explanation:
        out["explanation"] = explanation
    return out


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
