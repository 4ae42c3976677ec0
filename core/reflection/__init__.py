"""Reflection Engine: a question -> resonant gems -> prompt -> LLM answer -> re-cohered gems."""
from core.reflection.conversation import Conversation, ConversationStore
from core.reflection.engine import Reflection, ReflectionEngine
from core.reflection.prompt import SYSTEM_PROMPT, Prompt, PromptBudget, build_prompt
from core.reflection.ratelimit import RateLimitExceeded, TokenBucket, UserRateLimiter
from core.reflection.records import MemorySink, ReflectionRecord, ReflectionSink, StateChange
from core.reflection.services import ReflectionServices
from core.reflection.tokens import APPROX_COUNTER, TokenCounter, get_token_counter

__all__ = ["APPROX_COUNTER", "SYSTEM_PROMPT", "Conversation", "ConversationStore", "MemorySink", "Prompt", "PromptBudget",
           "Reflection", "ReflectionEngine", "ReflectionRecord", "ReflectionServices", "ReflectionSink", "StateChange",
           "TokenCounter", "build_prompt", "get_token_counter", "RateLimitExceeded", "TokenBucket", "UserRateLimiter"]
