"""Per-user token bucket (fake clock) and the offline extractive provider."""
from __future__ import annotations

import pytest

from core.errors import LatticeError
from core.router import LLMRequest, OfflineProvider, Source
from core.reflection import RateLimitExceeded, TokenBucket, UserRateLimiter
from core.router import split_sentences

from tests.fakes import FakeClock


def test_token_bucket_burst_then_refill():
    clock = FakeClock(0.0)
    bucket = TokenBucket(capacity=3, period=30.0, clock=clock)  # 1 token per 10 s
    assert [bucket.try_acquire()[0] for _ in range(3)] == [True] * 3
    ok, wait = bucket.try_acquire()
    assert not ok and wait == pytest.approx(10.0)
    clock.advance(4.0)
    ok, wait = bucket.try_acquire()
    assert not ok and wait == pytest.approx(6.0)
    clock.advance(6.0)
    assert bucket.try_acquire() == (True, 0.0)
    clock.advance(1000.0)
    assert bucket.tokens == pytest.approx(3.0)  # capped at capacity


def test_user_rate_limiter_is_per_user_with_clear_message():
    clock = FakeClock(0.0)
    limiter = UserRateLimiter(capacity=2, period=60.0, clock=clock)
    limiter.acquire("ann")
    limiter.acquire("ann")
    limiter.acquire("bob")  # another user has their own bucket
    with pytest.raises(RateLimitExceeded, match=r"user 'ann'.*at most 2 reflections per 60 s.*30\.0 s") as info:
        limiter.acquire("ann")
    assert isinstance(info.value, LatticeError) and info.value.retry_after == pytest.approx(30.0)
    clock.advance(30.0)
    limiter.acquire("ann")
    assert limiter.remaining("carol") == 2.0


def test_rate_limiter_rejects_bad_settings():
    with pytest.raises(LatticeError):
        UserRateLimiter(capacity=0)
    with pytest.raises(LatticeError):
        TokenBucket(1, 0.0)


SOURCES = (
    Source("wal", "A write-ahead log makes database commits durable. SQLite offers a WAL journal mode. "
                  "Readers do not block writers in WAL mode.", 0.9, 0.1, 0.6),
    Source("decay", "Exponential decay halves a quantity every half-life. Carbon dating relies on it.",
           0.5, 0.8, 0.2),
)


def req(question, sources=SOURCES):
    return LLMRequest("sys", ({"role": "user", "content": question},), question, sources)


def test_offline_answer_is_extractive_cited_and_deterministic():
    p = OfflineProvider(max_sentences=2)
    text = "".join(d.text for d in p.stream(req("Do readers block writers in WAL mode?"), 1.0) if hasattr(d, "text"))
    again = "".join(d.text for d in OfflineProvider(max_sentences=2).stream(
        req("Do readers block writers in WAL mode?"), 1.0) if hasattr(d, "text"))
    assert text == again
    assert text.startswith("Readers do not block writers in WAL mode. [wal]")
    # every sentence in the answer is a sentence of a source, followed by its gem id
    for piece in text.split("] ")[:-1]:
        sentence, gem = piece.rsplit(" [", 1)
        src = next(s for s in SOURCES if s.gem_id == gem)
        assert sentence in split_sentences(src.text)


def test_offline_flags_stale_gems_and_handles_no_sources():
    p = OfflineProvider(max_sentences=1)
    text = p.answer("How does exponential decay halve a quantity?", SOURCES)
    assert "[decay]" in text and "may be outdated" in text
    assert "nothing to answer from" in p.answer("anything", ())
    chunks = list(p.stream(req("q", ()), 1.0))
    assert "".join(c.text for c in chunks) == p.answer("q", ())  # text only: no token usage offline


def test_split_sentences():
    assert split_sentences("One. Two! Three? 4 items. e.g. lower") == ["One.", "Two!", "Three?", "4 items. e.g. lower"]
