"""Conversations: the turns of one user session, trimmed to a token budget."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from core.errors import LatticeError
from core.reflection.tokens import TokenCounter, get_token_counter


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str


class Conversation:
    """The turns of one user session, kept within ``max_tokens`` (oldest dropped first)."""

    def __init__(self, session_id: str = "default", max_tokens: int = 4000, counter: TokenCounter | None = None):
        self.session_id = session_id
        self.max_tokens = int(max_tokens)
        self.counter = counter or get_token_counter()
        self._turns: list[Turn] = []
        self._lock = threading.Lock()

    @property
    def turns(self) -> list[Turn]:
        with self._lock:
            return list(self._turns)

    def add(self, role: str, content: str) -> None:
        if role not in ("user", "assistant"):
            raise LatticeError(f"conversation role must be 'user' or 'assistant', got {role!r}")
        with self._lock:
            self._turns.append(Turn(role, content))
            self._trim_locked(self.max_tokens)

    def _trim_locked(self, budget: int) -> None:
        while self._turns and sum(self.counter.count(t.content) for t in self._turns) > budget:
            self._turns.pop(0)

    def window(self, budget: int) -> list[Turn]:
        """The most recent whole turns whose tokens fit ``budget``, oldest first.

        Starts on a user turn so the model never sees an answer without its question.
        """
        out: list[Turn] = []
        used = 0
        for turn in reversed(self.turns):
            n = self.counter.count(turn.content)
            if used + n > budget:
                break
            out.append(turn)
            used += n
        out.reverse()
        while out and out[0].role != "user":
            out.pop(0)
        return out

    def clear(self) -> None:
        with self._lock:
            self._turns.clear()


class ConversationStore:
    """Conversations by (user, session id), thread-safe: one per user's Streamlit session."""

    def __init__(self, max_tokens: int = 4000, counter: TokenCounter | None = None):
        self.max_tokens, self.counter = max_tokens, counter
        self._by_session: dict[tuple[str, str], Conversation] = {}
        self._lock = threading.Lock()

    def get(self, user: str, session_id: str = "default") -> Conversation:
        with self._lock:
            conv = self._by_session.get((user, session_id))
            if conv is None:
                conv = Conversation(session_id, self.max_tokens, self.counter)
                self._by_session[(user, session_id)] = conv
            return conv

    def reset(self, user: str, session_id: str = "default") -> None:
        with self._lock:
            self._by_session.pop((user, session_id), None)
