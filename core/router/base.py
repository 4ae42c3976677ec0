"""Types shared by the router and its providers: request, stream items, errors."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol, Sequence, Union

import numpy as np

from core.errors import LatticeError
from core.retry import ProviderError


@dataclass(frozen=True)
class Source:
    """A retrieved gem as the providers see it (the offline provider answers from these)."""

    gem_id: Any
    text: str
    coherence: float = 1.0
    uncertainty: float = 0.0
    score: float = 0.0


@dataclass(frozen=True)
class LLMRequest:
    """One answer to generate.

    ``messages`` are ``{"role": "user"|"assistant", "content": str}`` dicts, the last
    one the user's turn (with the gems and the question); ``system`` the instructions.
    ``question`` and ``sources`` are also given raw for the offline provider.
    """

    system: str
    messages: tuple[dict[str, str], ...]
    question: str
    sources: tuple[Source, ...] = ()
    max_output_tokens: int = 800
    query_embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Delta:
    """A piece of answer text."""

    text: str


@dataclass(frozen=True)
class Usage:
    """Tokens reported by the provider (None when it does not say)."""

    input_tokens: int | None = None
    output_tokens: int | None = None


StreamItem = Union[Delta, Usage]


class Provider(Protocol):
    """An LLM backend. ``stream`` yields Delta and Usage items and raises on failure."""

    name: str
    model: str

    def availability(self) -> tuple[bool, str]:
        """(usable, reason): e.g. (False, "no OPENAI_API_KEY")."""
        ...

    def stream(self, request: LLMRequest, timeout: float) -> Iterator[StreamItem]:
        ...


class RouterError(LatticeError):
    """No provider could answer (every one skipped, cooling down or failing)."""


class EmptyAnswerError(ProviderError):
    """A provider finished its stream without producing any text."""


def as_messages(messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]
