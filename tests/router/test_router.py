"""LLM router through the real OpenAI and Anthropic client classes (httpx2.MockTransport).

Covers: streaming, retries with backoff and Retry-After, no retry on plain 4xx,
fallback, cooldown, streams breaking before and after the first token, skipped
providers without keys, metrics. A fake clock and sleep keep it fast and exact.
"""
from __future__ import annotations

import random

import httpx2
import pytest

from core.router import AnthropicProvider, LLMRequest, LLMRouter, OfflineProvider, OpenAIProvider, RouterError, Source, build_router
from core.retry import RetryPolicy, classify, parse_retry_after
from core.router import CooldownTracker

from tests.fakes import (Endpoint, anthropic_client, anthropic_events, broken_stream_response, openai_client,
                       openai_events, stream_response)

REQ = LLMRequest(system="Answer from the gems.", messages=({"role": "user", "content": "What is WAL?"},),
                 question="What is WAL?",
                 sources=(Source("wal", "A write-ahead log makes commits durable. SQLite has a WAL mode.",
                                 0.9, 0.1, 0.5),), max_output_tokens=50)


def make_router(providers, clock, **kw):
    policy = kw.pop("policy", RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=8.0, jitter=0.5, timeout=7.0))
    cooldown = kw.pop("cooldown", CooldownTracker(threshold=3, cooldown=30.0, clock=clock))
    return LLMRouter(providers, policy=policy, cooldown=cooldown, clock=clock, sleep=clock.sleep,
                     rng=random.Random(1), wall=clock, **kw)


def err(status, headers=None, body=None):
    return httpx2.Response(status, headers=headers or {}, json=body or {"error": {"message": f"status {status}"}})


def test_openai_streams_through_responses_api(clock):
    ep = Endpoint([stream_response(openai_events(["Hello ", "from ", "OpenAI [wal]"]))])
    router = make_router([OpenAIProvider("gpt-test", client=openai_client(ep))], clock)
    stream = router.stream(REQ)
    chunks = list(stream)
    assert chunks == ["Hello ", "from ", "OpenAI [wal]"]
    assert stream.provider == "openai" and stream.model == "gpt-test" and not stream.interrupted
    assert (stream.usage.input_tokens, stream.usage.output_tokens) == (12, 5)
    req = ep.requests[0]
    assert req.url.path == "/v1/responses" and req.headers["x-stainless-retry-count"] == "0"
    body = ep.bodies[0]
    assert body["stream"] is True and body["model"] == "gpt-test" and body["instructions"] == REQ.system
    assert body["input"] == [{"role": "user", "content": "What is WAL?"}] and body["max_output_tokens"] == 50
    assert [a.outcome for a in stream.trace] == ["ok"]


def test_anthropic_streams_through_messages_api(clock):
    ep = Endpoint([stream_response(anthropic_events(["Hi ", "from Claude"]))])
    router = make_router([AnthropicProvider("claude-test", client=anthropic_client(ep))], clock)
    stream = router.complete(REQ)
    assert stream.text == "Hi from Claude" and stream.provider == "anthropic"
    assert (stream.usage.input_tokens, stream.usage.output_tokens) == (20, 7)
    body = ep.bodies[0]
    assert ep.requests[0].url.path == "/v1/messages"
    assert body["system"] == REQ.system and body["max_tokens"] == 50 and body["stream"] is True


def test_429_retry_after_is_honoured_then_success(clock):
    ep = Endpoint([err(429, {"retry-after": "2"}), err(503),
                   stream_response(openai_events(["ok"]))])
    router = make_router([OpenAIProvider("m", client=openai_client(ep))], clock)
    stream = router.complete(REQ)
    assert stream.text == "ok"
    assert clock.sleeps[0] == 2.0  # Retry-After, not the backoff
    assert 1.0 <= clock.sleeps[1] <= 2.0  # attempt 2 backoff: 2 s with 50 % jitter -> [1, 2]
    assert [(a.outcome, a.status_code) for a in stream.trace] == [("error", 429), ("error", 503), ("ok", None)]
    assert stream.trace[0].retry_in_s == 2.0
    m = router.metrics_snapshot()["openai"]
    assert m["calls"] == 3 and m["errors"] == 2 and m["error_rate"] == pytest.approx(2 / 3)
    assert m["consecutive_failures"] == 0 and not m["cooling"]


def test_backoff_is_exponential_with_bounded_jitter():
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=0.5)
    rng = random.Random(7)
    for attempt, full in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        assert min(delays) >= full * 0.5 and max(delays) <= full
        assert max(delays) - min(delays) > full * 0.3  # jitter really varies
    assert RetryPolicy(jitter=0.0, base_delay=1.0).backoff(3, rng) == 4.0


def test_no_retry_on_plain_4xx_falls_back_at_once(clock):
    ep = Endpoint([err(401, body={"error": {"message": "bad key"}})])
    router = make_router([OpenAIProvider("m", client=openai_client(ep)), OfflineProvider()], clock)
    stream = router.complete(REQ)
    assert len(ep.requests) == 1 and clock.sleeps == []
    assert stream.provider == "offline" and "[wal]" in stream.text
    assert [(a.provider, a.outcome, a.status_code) for a in stream.trace] == [
        ("openai", "error", 401), ("offline", "ok", None)]


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 529])
def test_retryable_statuses(status):
    import openai

    resp = httpx2.Response(status, request=httpx2.Request("POST", "http://x"))
    failure = classify(openai.APIStatusError("boom", response=resp, body=None))
    assert failure.retryable and failure.status_code == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_non_retryable_statuses(status):
    import anthropic

    resp = httpx2.Response(status, request=httpx2.Request("POST", "http://x"))
    assert not classify(anthropic.APIStatusError("no", response=resp, body=None)).retryable


def test_connection_errors_retried_then_fallback_and_cooldown(clock):
    ep = Endpoint([httpx2.ConnectError("refused")] * 3)
    ep2 = Endpoint([lambda r: stream_response(anthropic_events(["fallback answer"]))] * 2)
    router = make_router([OpenAIProvider("m", client=openai_client(ep)),
                          AnthropicProvider("c", client=anthropic_client(ep2))], clock)
    stream = router.complete(REQ)
    assert stream.provider == "anthropic" and stream.text == "fallback answer"
    assert len(ep.requests) == 3
    outcomes = [(a.provider, a.outcome) for a in stream.trace]
    assert outcomes == [("openai", "error"), ("openai", "error"), ("openai", "error"), ("anthropic", "ok")]
    assert "cooling down" in stream.trace[2].detail and stream.trace[2].retry_in_s is None
    assert len(clock.sleeps) == 2  # two backoffs between three attempts
    state = {s.provider: s for s in router.cooldown_state()}
    assert state["openai"].cooling and state["openai"].remaining == pytest.approx(30.0)
    # next request: openai is skipped, visibly, without a request
    stream2 = router.complete(REQ)
    assert [(a.provider, a.outcome) for a in stream2.trace] == [("openai", "cooling"), ("anthropic", "ok")]
    assert len(ep.requests) == 3
    assert router.metrics_snapshot()["openai"]["cooling"] is True


def test_cooldown_expires_and_success_resets(clock):
    ep = Endpoint([lambda r: err(500)] * 3 + [stream_response(openai_events(["back"]))])
    router = make_router([OpenAIProvider("m", client=openai_client(ep)), OfflineProvider()], clock)
    assert router.complete(REQ).provider == "offline"
    clock.advance(29.0)
    assert [a.outcome for a in router.complete(REQ).trace][0] == "cooling"
    clock.advance(30.0)
    s = router.complete(REQ)
    assert s.provider == "openai" and s.text == "back"
    assert router.cooldown_state()[0].consecutive_failures == 0 and not router.cooldown_state()[0].cooling


def test_long_retry_after_falls_back_and_cools_for_that_long(clock):
    ep = Endpoint([err(429, {"retry-after": "120"})])
    router = make_router([OpenAIProvider("m", client=openai_client(ep)), OfflineProvider()], clock)
    s = router.complete(REQ)
    assert s.provider == "offline" and clock.sleeps == []
    assert router.cooldown_state()[0].remaining == pytest.approx(120.0)


def test_stream_breaking_before_first_token_falls_back(clock):
    ep = Endpoint([lambda r: broken_stream_response(openai_events(["never"]), after=1)] * 3)
    ep2 = Endpoint([lambda r: broken_stream_response(anthropic_events(["never"]), after=2)] * 3)
    router = make_router([OpenAIProvider("m", client=openai_client(ep)),
                          AnthropicProvider("c", client=anthropic_client(ep2)), OfflineProvider()], clock)
    s = router.complete(REQ)
    assert s.provider == "offline" and not s.interrupted and "never" not in s.text
    assert [(a.provider, a.outcome) for a in s.trace] == [("openai", "error")] * 3 + [("anthropic", "error")] * 3 + [
        ("offline", "ok")]
    assert all("ReadError" in a.detail or "Connection" in a.detail for a in s.trace[:6])


@pytest.mark.parametrize("which", ["openai", "anthropic"])
def test_stream_breaking_after_tokens_ends_with_notice_not_restart(clock, which, caplog):
    if which == "openai":
        ep = Endpoint([broken_stream_response(openai_events(["Half ", "an ", "answer"]), after=3)])
        provider = OpenAIProvider("m", client=openai_client(ep))
    else:
        ep = Endpoint([broken_stream_response(anthropic_events(["Half ", "an ", "answer"]), after=4)])
        provider = AnthropicProvider("c", client=anthropic_client(ep))
    router = make_router([provider, OfflineProvider()], clock)
    stream = router.stream(REQ)
    chunks = list(stream)
    assert chunks[:2] == ["Half ", "an "]
    assert chunks[-1].startswith("\n\n[answer interrupted") and "not restarted" in chunks[-1]
    assert stream.interrupted and stream.provider == which and len(ep.requests) == 1
    assert [a.outcome for a in stream.trace] == ["stream_broken"]
    assert "broke after" in caplog.text


def test_provider_without_key_is_skipped_visibly(clock):
    router = build_router("openai,anthropic,offline", env={}, clock=clock, sleep=clock.sleep)
    s = router.complete(REQ)
    assert s.provider == "offline"
    assert [(a.provider, a.outcome, a.detail) for a in s.trace[:2]] == [
        ("openai", "skipped", "no OPENAI_API_KEY set"), ("anthropic", "skipped", "no ANTHROPIC_API_KEY set")]
    snap = router.metrics_snapshot()
    assert snap["openai"]["available"] is False and snap["openai"]["skipped"] == 1


def test_models_and_order_from_environment():
    env = {"OPENAI_API_KEY": "k", "OPENAI_MODEL": "gpt-x", "ANTHROPIC_MODEL": "claude-y",
           "LATTICE_LLM_ORDER": "anthropic, offline"}
    r = build_router(env=env)
    assert r.order == ["anthropic", "offline"]
    assert r.providers[0].model == "claude-y" and r.providers[0].availability()[0] is False
    r2 = build_router("openai", env=env)
    assert r2.providers[0].model == "gpt-x" and r2.providers[0].availability() == (True, "")
    assert build_router(env={}).order == ["openai", "anthropic", "offline"]


def test_all_failing_without_offline_raises_router_error(clock):
    ep = Endpoint([err(400)])
    router = make_router([OpenAIProvider("m", client=openai_client(ep))], clock)
    with pytest.raises(RouterError, match="openai.*HTTP 400"):
        router.complete(REQ)


def test_stream_error_event_is_a_failed_attempt(clock):
    events = openai_events([])[:1] + [{"type": "response.failed", "sequence_number": 1,
                                       "response": {"id": "r", "object": "response", "status": "failed",
                                                    "output": [], "error": {"code": "server_error",
                                                                            "message": "overloaded"}}}]
    ep = Endpoint([stream_response(events), stream_response(openai_events(["second try"]))])
    router = make_router([OpenAIProvider("m", client=openai_client(ep))], clock)
    s = router.complete(REQ)
    assert s.text == "second try" and [a.outcome for a in s.trace] == ["error", "ok"]


def test_per_call_timeout_is_passed_and_timeouts_retried(clock):
    ep = Endpoint([httpx2.ReadTimeout("slow"), stream_response(openai_events(["done"]))])
    router = make_router([OpenAIProvider("m", client=openai_client(ep))], clock)
    assert router.complete(REQ).text == "done"
    assert ep.requests[0].headers["x-stainless-read-timeout"] == "7.0"
    assert classify(__import__("openai").APITimeoutError(request=ep.requests[0])).kind == "timeout"


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_empty_answer_falls_back(clock):
    ep = Endpoint([stream_response(openai_events([]))])
    router = make_router([OpenAIProvider("m", client=openai_client(ep)), OfflineProvider()], clock)
    s = router.complete(REQ)
    assert s.provider == "offline" and "without any answer text" in s.trace[0].detail


def test_anthropic_overloaded_error_event_before_text_is_retried(clock):
    events = anthropic_events([])[:1] + [{"type": "error",
                                          "error": {"type": "overloaded_error", "message": "Overloaded"}}]
    ep = Endpoint([stream_response(events), stream_response(anthropic_events(["recovered"]))])
    router = make_router([AnthropicProvider("c", client=anthropic_client(ep))], clock)
    s = router.complete(REQ)
    assert s.text == "recovered" and [a.outcome for a in s.trace] == ["error", "ok"]
    assert "overloaded_error" in s.trace[0].detail and len(clock.sleeps) == 1
