"""Reflection Engine: a question -> resonant gems -> prompt -> LLM answer -> re-cohered gems."""
from core.reflection.engine import (APPROX_COUNTER, SYSTEM_PROMPT, Conversation, ConversationStore, MemorySink, Prompt, PromptBudget, Reflection,
                                    ReflectionEngine, ReflectionRecord, ReflectionSink, StateChange, TokenCounter,
                                    build_prompt, get_token_counter)
from core.reflection.ratelimit import TokenBucket, UserRateLimiter

__all__ = ["APPROX_COUNTER", "SYSTEM_PROMPT", "Conversation", "ConversationStore", "MemorySink", "Prompt", "PromptBudget", "Reflection",
           "ReflectionEngine", "ReflectionRecord", "ReflectionSink", "StateChange", "TokenCounter", "build_prompt",
           "get_token_counter", "TokenBucket", "UserRateLimiter"]
