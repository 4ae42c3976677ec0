"""The prompt: system text, the most resonant gems packed into a token budget, the history, the question."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core.errors import LatticeError
from core.knowledge.resonance import RankedGem, Ranking, cosine_matrix
from core.reflection.conversation import Conversation
from core.reflection.tokens import TokenCounter

SYSTEM_PROMPT = (
    "You answer questions from a lattice of knowledge gems. Use only the gems given in the user's message; "
    "cite every gem you use by its id in square brackets, like [gem-id]. If the gems do not contain the "
    "answer, say so instead of guessing. Each gem shows its coherence (1 = freshly confirmed, 0 = decayed) "
    "and uncertainty (0 = certain, 1 = unknown). Gems marked STALE have high uncertainty and may be "
    "outdated: prefer fresher gems, and say so when an answer rests on a stale gem."
)


@dataclass(frozen=True)
class PromptBudget:
    """Token budgets (counted with the engine's TokenCounter).

    ``max_prompt_tokens`` bounds system + gems + conversation + question;
    ``conversation_tokens`` bounds the history part; ``max_output_tokens`` is
    passed to the provider.
    """

    max_prompt_tokens: int = 3000
    conversation_tokens: int = 800
    max_output_tokens: int = 800

    def __post_init__(self) -> None:
        if min(self.max_prompt_tokens, self.max_output_tokens) < 1 or self.conversation_tokens < 0:
            raise LatticeError("prompt budget: token limits must be positive")


@dataclass(frozen=True)
class Prompt:
    system: str
    messages: tuple[dict[str, str], ...]
    included: tuple[RankedGem, ...]
    skipped: tuple[tuple[Any, str], ...]  # (gem id, reason)
    prompt_tokens: int
    conversation_turns: int


def gem_block(gem: RankedGem, text: str, stale_uncertainty: float) -> str:
    """One gem as it appears in the prompt: id, state annotations, text."""
    flag = ", STALE: may be outdated" if gem.uncertainty >= stale_uncertainty else ""
    # floor/weighted scoring keep the most similar gem even when decayed: tell the model why it is there
    kept = ", the most similar gem, kept although faded" if gem.kept_as_most_similar else ""
    return (f"[{gem.gem_id}] (coherence {gem.coherence:.2f}, uncertainty {gem.uncertainty:.2f}, "
            f"resonance {gem.resonance:.3f}{kept}{flag})\n{text.strip()}")


def build_prompt(question: str, ranking: Ranking, texts: Sequence[str], embeddings: np.ndarray,
                 conversation: Conversation | None, counter: TokenCounter, budget: PromptBudget = PromptBudget(),
                 dedup_threshold: float = 0.95, stale_uncertainty: float = 0.5) -> Prompt:
    """Assemble the prompt: gems packed by rank into the budget, near-duplicates dropped.

    Parameters
    ----------
    question : str
    ranking : Ranking
        Gems best first; packed in this order, a gem that does not fit is skipped
        and smaller later ones may still fit.
    texts, embeddings : sequence of str, ndarray (N, d)
        Gem texts and embeddings in lattice order.
    conversation : Conversation or None
        History; its most recent turns within ``budget.conversation_tokens``.
    counter : TokenCounter
    dedup_threshold : float
        A gem whose embedding cosine with an already included gem exceeds this is dropped.
    stale_uncertainty : float
        Gems with uncertainty >= this are marked STALE in the prompt.
    """
    history = conversation.window(budget.conversation_tokens) if conversation else []
    head = "Gems (most resonant first):\n\n"
    tail = f"\n\nQuestion: {question.strip()}"
    fixed = (counter.count(SYSTEM_PROMPT) + counter.count(head) + counter.count(tail)
             + sum(counter.count(t.content) for t in history))
    room = budget.max_prompt_tokens - fixed
    gems = list(ranking.gems)
    sims = cosine_matrix(np.asarray(embeddings)[[g.index for g in gems]]) if gems else np.zeros((0, 0))
    included: list[int] = []  # positions into gems
    skipped: list[tuple[Any, str]] = []
    blocks: list[str] = []
    used = 0
    for pos, gem in enumerate(gems):
        if included:
            dup = np.asarray(included)[sims[pos, included] > dedup_threshold]
            if dup.size:
                skipped.append((gem.gem_id, f"near-duplicate of [{gems[int(dup[0])].gem_id}] "
                                            f"(cosine {sims[pos, int(dup[0])]:.3f} > {dedup_threshold})"))
                continue
        block = gem_block(gem, texts[gem.index], stale_uncertainty)
        n = counter.count(block + "\n\n")
        if used + n > room:
            skipped.append((gem.gem_id, f"does not fit the token budget ({n} tokens, {max(room - used, 0)} left)"))
            continue
        included.append(pos)
        blocks.append(block)
        used += n
    user = head + "\n\n".join(blocks) + tail
    messages = tuple({"role": t.role, "content": t.content} for t in history) + ({"role": "user", "content": user},)
    tokens = counter.count(SYSTEM_PROMPT) + sum(counter.count(m["content"]) for m in messages)
    return Prompt(SYSTEM_PROMPT, messages, tuple(gems[p] for p in included), tuple(skipped), tokens, len(history))
