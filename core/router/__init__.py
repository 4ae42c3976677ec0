"""LLM Router: providers (OpenAI, then Anthropic, then the offline answerer), retries, cooldown.

Public API::

    router = build_router()                       # order from LATTICE_LLM_ORDER
    stream = router.stream(LLMRequest(...))
    for chunk in stream: ...                      # text chunks
    stream.provider, stream.trace, stream.usage, stream.interrupted
    router.metrics_snapshot(), router.cooldown_state()
"""
from core.router.base import Delta, EmptyAnswerError, LLMRequest, Provider, ProviderError, RouterError, Source, Usage
from core.router.health import CooldownState, CooldownTracker, RouterMetrics
from core.router.providers import (DEFAULT_ANTHROPIC_MODEL, DEFAULT_OPENAI_MODEL, AnthropicProvider, OfflineProvider,
                        OpenAIProvider, split_sentences)
from core.router.router import DEFAULT_ORDER, Attempt, LLMRouter, RouterStream, build_router, make_provider

__all__ = [
    "Delta", "EmptyAnswerError", "LLMRequest", "Provider", "ProviderError", "RouterError",
    "Source", "Usage", "CooldownState", "CooldownTracker", "RouterMetrics",
    "DEFAULT_ANTHROPIC_MODEL", "DEFAULT_OPENAI_MODEL", "AnthropicProvider", "OfflineProvider", "OpenAIProvider",
    "split_sentences", "DEFAULT_ORDER", "Attempt", "LLMRouter", "RouterStream", "build_router", "make_provider",
]
