"""The LLM router: providers in order, one retry loop, cooldown, streaming fallback.

For each request the providers are tried in order (default OpenAI -> Anthropic ->
offline). A provider without a key is skipped, and so is one cooling down; both
appear in the trace. Each provider gets up to ``policy.max_attempts`` attempts with
exponential backoff and jitter (honouring Retry-After) on retryable failures
(429, 408, 409, 5xx, connection errors, timeouts); any other failure moves on to
the next provider at once.

Streaming: a stream that fails *before its first token* is a failed attempt like
any other (retry, then fall back). A stream that fails *after* tokens were shown is
not restarted (that would repeat or contradict text the user has read): the answer
ends with a visible notice, the break is logged and traced.
"""
from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator, Mapping, Sequence

from core.errors import LatticeError
from core.router.base import Delta, EmptyAnswerError, LLMRequest, Provider, RouterError, Usage
from core.router.health import CooldownState, CooldownTracker, RouterMetrics
from core.router.providers import AnthropicProvider, OfflineProvider, OpenAIProvider
from core.retry import RetryPolicy, classify

log = logging.getLogger("core.router")

DEFAULT_ORDER = ("openai", "anthropic", "offline")


@dataclass(frozen=True)
class Attempt:
    """One line of a router trace.

    ``outcome`` is one of: ``ok``, ``skipped`` (not configured), ``cooling`` (in
    cooldown), ``error`` (failed before any token), ``stream_broken`` (failed after
    tokens were shown). Times are seconds.
    """

    provider: str
    model: str
    attempt: int
    outcome: str
    detail: str = ""
    latency_s: float = 0.0
    first_token_s: float | None = None
    status_code: int | None = None
    retry_in_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        s = f"{self.provider} ({self.model}) attempt {self.attempt}: {self.outcome}"
        if self.status_code:
            s += f" [HTTP {self.status_code}]"
        if self.detail:
            s += f" - {self.detail}"
        if self.retry_in_s is not None:
            s += f"; retry in {self.retry_in_s:.2f} s"
        return s


class RouterStream:
    """Iterate to receive the answer's text chunks; then read provider, trace, usage.

    Attributes (complete once iteration has finished)
    ----------
    provider, model : str or None
        Who produced the answer.
    trace : list of Attempt
        Every attempt and skip, in order.
    usage : Usage
        Tokens reported by the provider that answered.
    interrupted : bool
        True when the stream broke after tokens were shown (text ends with a notice).
    """

    def __init__(self, router: "LLMRouter", request: LLMRequest):
        self._router = router
        self._request = request
        self.provider: str | None = None
        self.model: str | None = None
        self.trace: list[Attempt] = []
        self.usage = Usage()
        self.interrupted = False
        self.notice: str | None = None
        self.finished = False
        self._parts: list[str] = []
        self._iter: Iterator[str] | None = None

    @property
    def text(self) -> str:
        """The text delivered so far (the answer, plus the notice if interrupted)."""
        return "".join(self._parts)

    def __iter__(self) -> Iterator[str]:
        if self._iter is None:
            self._iter = self._run()
        return self._iter

    def consume(self) -> str:
        """Read the rest of the stream; return the whole text."""
        for _ in self:
            pass
        return self.text

    def _run(self) -> Iterator[str]:
        r = self._router
        policy = r.policy
        for provider in r.providers:
            name, model = provider.name, getattr(provider, "model", "")
            usable, reason = provider.availability()
            if not usable:
                self.trace.append(Attempt(name, model, 0, "skipped", reason))
                r.metrics.record_skip(name)
                continue
            until = r.cooldown.cooling_until(name)
            if until is not None:
                self.trace.append(Attempt(name, model, 0, "cooling",
                                          f"cooling down for {until - r.clock():.1f} s more after repeated failures"))
                r.metrics.record_skip(name)
                continue
            for attempt in range(1, policy.max_attempts + 1):
                t0 = r.clock()
                first_token: float | None = None
                usage = Usage()
                source = None
                try:
                    source = provider.stream(self._request, policy.timeout)
                    for item in source:
                        if isinstance(item, Usage):
                            usage = Usage(item.input_tokens if item.input_tokens is not None else usage.input_tokens,
                                          item.output_tokens if item.output_tokens is not None else usage.output_tokens)
                            continue
                        if not isinstance(item, Delta) or not item.text:
                            continue
                        if first_token is None:
                            first_token = r.clock() - t0
                            self.provider, self.model = name, model
                        self._parts.append(item.text)
                        yield item.text
                    if first_token is None:
                        raise EmptyAnswerError(f"{name} finished without any answer text")
                except Exception as exc:  # classified below; nothing is swallowed silently
                    latency = r.clock() - t0
                    failure = classify(exc)
                    r.metrics.record_attempt(name, False, latency, r.wall())
                    if first_token is not None:
                        r.cooldown.record_failure(name, failure.message)
                        self.interrupted = True
                        shown = len(self.text)
                        self.notice = (f"\n\n[answer interrupted: the {name} stream broke after {shown} characters "
                                       f"({failure.message}); it was not restarted]")
                        self.trace.append(Attempt(name, model, attempt, "stream_broken", failure.message, latency,
                                                  first_token, failure.status_code, None,
                                                  usage.input_tokens, usage.output_tokens))
                        log.warning("stream from %s (%s) broke after %d characters: %s",
                                    name, model, shown, failure.message)
                        self._parts.append(self.notice)
                        self.usage = usage
                        self.finished = True
                        yield self.notice
                        return
                    long_wait = failure.retry_after is not None and failure.retry_after > policy.max_delay
                    cooled = r.cooldown.record_failure(name, failure.message,
                                                       cool_for=failure.retry_after if long_wait else None)
                    retry = failure.retryable and attempt < policy.max_attempts and not cooled and not long_wait
                    delay = None
                    if retry:
                        delay = (failure.retry_after if failure.retry_after is not None
                                 else policy.backoff(attempt, r.rng))
                    detail = failure.message
                    if cooled:
                        detail += f" (provider cooling down until t={r.cooldown.cooling_until(name) or 0:.1f})"
                    self.trace.append(Attempt(name, model, attempt, "error", detail, latency, None,
                                              failure.status_code, delay))
                    log.info("provider %s attempt %d failed: %s", name, attempt, failure.message)
                    if retry:
                        r.sleep(delay)
                        continue
                    break
                else:
                    latency = r.clock() - t0
                    r.metrics.record_attempt(name, True, latency, r.wall())
                    r.cooldown.record_success(name)
                    self.usage = usage
                    self.trace.append(Attempt(name, model, attempt, "ok", "", latency, first_token, None, None,
                                              usage.input_tokens, usage.output_tokens))
                    self.finished = True
                    return
                finally:
                    close = getattr(source, "close", None)
                    if close is not None:
                        close()
        summary = "; ".join(a.describe() for a in self.trace) or "no providers configured"
        raise RouterError(f"no LLM provider could answer: {summary}. Add 'offline' to the provider order "
                          "to always get an extractive answer")


class LLMRouter:
    """Routes a request to the first provider that answers.

    Parameters
    ----------
    providers : sequence of Provider
        In order of preference.
    policy : RetryPolicy
        Attempts, backoff and per-call timeout.
    cooldown : CooldownTracker, optional
        Default: 3 consecutive failures -> 30 s cooldown, on ``clock``.
    clock : callable
        Monotonic seconds (latencies, cooldowns); injectable for tests.
    sleep : callable
        Waits between attempts; tests pass a recorder so nothing really sleeps.
    rng : random.Random, optional
        Jitter source (seed it for reproducible delays).
    wall : callable
        Wall-clock seconds to stamp latency samples (for plotting).
    """

    def __init__(self, providers: Sequence[Provider], *, policy: RetryPolicy | None = None,
                 cooldown: CooldownTracker | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 metrics: RouterMetrics | None = None, wall: Callable[[], float] = time.time):
        if not providers:
            raise LatticeError("the LLM router needs at least one provider (e.g. 'offline')")
        names = [p.name for p in providers]
        if len(set(names)) != len(names):
            raise LatticeError(f"provider order lists a provider twice: {names}")
        self.providers = list(providers)
        self.policy = policy or RetryPolicy()
        self.clock, self.sleep, self.wall = clock, sleep, wall
        self.cooldown = cooldown or CooldownTracker(clock=clock)
        self.rng = rng or random.Random()
        self.metrics = metrics or RouterMetrics()

    @property
    def order(self) -> list[str]:
        return [p.name for p in self.providers]

    def stream(self, request: LLMRequest) -> RouterStream:
        """Start routing ``request``; iterate the result for text chunks."""
        return RouterStream(self, request)

    def complete(self, request: LLMRequest) -> RouterStream:
        """Route and read the whole answer (``.text``, ``.trace``, ...)."""
        s = self.stream(request)
        s.consume()
        return s

    def cooldown_state(self) -> list[CooldownState]:
        """Cooldown state of every provider, in order."""
        return [self.cooldown.state(p.name) for p in self.providers]

    def latency_samples(self, provider: str) -> list[tuple[float, float]]:
        """``(wall time s, latency s)`` of every recorded attempt of ``provider`` (bounded)."""
        return self.metrics.latency_samples(provider)

    def metrics_snapshot(self) -> dict[str, dict]:
        """Per provider: model, available, calls, errors, error_rate, latency p50/p95,
        consecutive_failures, cooling, cooldown_remaining_s."""
        snap = self.metrics.snapshot()
        out = {}
        for p in self.providers:
            usable, reason = p.availability()
            cs = self.cooldown.state(p.name)
            base = snap.get(p.name, {"calls": 0, "errors": 0, "skipped": 0, "error_rate": 0.0,
                                     "latency_p50": None, "latency_p95": None, "samples": 0})
            out[p.name] = {"model": getattr(p, "model", ""), "available": usable, "unavailable_reason": reason,
                           **base, "consecutive_failures": cs.consecutive_failures, "cooling": cs.cooling,
                           "cooldown_until": cs.cooldown_until, "cooldown_remaining_s": cs.remaining,
                           "last_error": cs.last_error}
        return out


def make_provider(name: str, env: Mapping[str, str] | None = None) -> Provider:
    """A provider by name: ``openai``, ``anthropic`` or ``offline``."""
    if name == "openai":
        return OpenAIProvider(env=env)
    if name == "anthropic":
        return AnthropicProvider(env=env)
    if name == "offline":
        return OfflineProvider()
    raise LatticeError(f"unknown LLM provider {name!r}; known: openai, anthropic, offline")


def build_router(order: str | Sequence[str] | None = None, env: Mapping[str, str] | None = None,
                 **kwargs) -> LLMRouter:
    """A router from configuration.

    ``order`` (or ``LATTICE_LLM_ORDER``, comma-separated; default
    ``openai,anthropic,offline``); keys and models from ``env`` (default
    ``os.environ``). Extra keyword arguments go to :class:`LLMRouter`.
    """
    env = os.environ if env is None else env
    if order is None:
        order = env.get("LATTICE_LLM_ORDER") or ",".join(DEFAULT_ORDER)
    names = [n.strip().lower() for n in (order.split(",") if isinstance(order, str) else order) if n.strip()]
    return LLMRouter([make_provider(n, env) for n in names], **kwargs)
