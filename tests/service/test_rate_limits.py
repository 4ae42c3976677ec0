"""Rate limits per identity that hold across nodes (core.service.rate_limits).

Through the real Redis (the ``redis_url`` fixture: its prefix is every test's key prefix, so
runs are isolated), two RateLimits objects on one Redis stand for two nodes. Redis going
down is a closed port, and for the round trip (down, then back) a private redis-server
this test starts and stops by its own pid.
"""
from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis

from core.access import Actor, Role
from core.errors import LatticeError
from core.reflection import RateLimitExceeded, UserRateLimiter
from core.router import build_router
from core.service import Limiter, RateLimits, RateStore, Workbench, ensure_demo
from core.store import Store
from tests.conftest import skip_or_fail

LOGGER = "core.service.rate_limits"
RIA = Actor("ria", Role.RESEARCHER)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(redis_url, requests="300/minute", reflections="10/minute"):
    url, prefix = redis_url
    return [RateLimits(requests, reflections, RateStore(url, prefix=prefix)) for _ in range(2)]


def granted(limiter: Limiter, identity: str, attempts: int) -> int:
    ok = 0
    for _ in range(attempts):
        try:
            limiter.acquire(identity)
            ok += 1
        except RateLimitExceeded:
            pass
    return ok


# ------------------------------------------------------------------ settings
@pytest.mark.parametrize("value", ["ten per minute", "10/fortnight", "0/minute", "1/second;5/minute"])
def test_a_bad_limit_names_the_variable_with_an_example(value):
    with pytest.raises(LatticeError, match=r"LATTICE_REFLECTION_RATE_LIMIT must be one limit such as '10/minute'"):
        RateLimits.from_env({"LATTICE_REFLECTION_RATE_LIMIT": value})


def test_an_empty_limit_is_refused_but_an_unset_variable_means_the_default():
    with pytest.raises(LatticeError, match="LATTICE_API_RATE_LIMIT must be one limit.*it is empty"):
        RateLimits(requests=" ")
    assert RateLimits.from_env({"LATTICE_API_RATE_LIMIT": " "}).requests.limit == "300 per 1 minute"


def test_bad_api_limit_and_bad_redis_url_are_clear_errors():
    with pytest.raises(LatticeError, match="LATTICE_API_RATE_LIMIT.*got 'lots'"):
        RateLimits.from_env({"LATTICE_API_RATE_LIMIT": "lots"})
    with pytest.raises(LatticeError, match=r"LATTICE_REDIS_URL must be a Redis URL such as redis://.*'http'"):
        RateLimits.from_env({"LATTICE_REDIS_URL": "http://127.0.0.1:6379"})


def test_limit_texts_defaults_and_readable_form():
    limits = RateLimits.from_env({"LATTICE_API_RATE_LIMIT": "1000 per 2 hours"})
    assert limits.requests.limit == "1000 per 2 hour" and limits.requests.period == 7200.0
    assert limits.reflections.limit == "10 per 1 minute" and limits.reflections.capacity == 10
    assert RateLimits.from_env({}).requests.limit == "300 per 1 minute"


def test_without_redis_memory_limits_and_one_warning(caplog, monkeypatch):
    import core.service.rate_limits as rate_limits
    monkeypatch.setattr(rate_limits, "_warned_unshared", False)  # as in a fresh process
    with caplog.at_level(logging.INFO, logger=LOGGER):
        limits = RateLimits.from_env({"LATTICE_REFLECTION_RATE_LIMIT": "2/minute"})
        RateLimits.from_env({})  # a second workbench of the same process: no second warning
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "per process" in warnings[0].getMessage()
    assert "LATTICE_REDIS_URL" in warnings[0].getMessage()
    assert not limits.shared and limits.stats()["storage"] == "memory"
    assert granted(limits.reflections, "ann", 5) == 2


def test_an_identity_is_required():
    with pytest.raises(LatticeError, match="identity"):
        Limiter("2/minute").acquire("")


# ------------------------------------------------------------------ behaviour (memory and Redis)
@pytest.fixture(params=["memory", "redis"])
def limits(request):
    if request.param == "memory":
        return RateLimits("3/minute", "2/hour")
    url, prefix = request.getfixturevalue("redis_url")
    return RateLimits("3/minute", "2/hour", RateStore(url, prefix=prefix))


def test_identities_are_independent_and_remaining_counts_down(limits):
    assert limits.requests.remaining("ann") == 3
    assert granted(limits.requests, "ann", 5) == 3
    assert limits.requests.remaining("ann") == 0
    assert limits.requests.remaining("key:ab12") == 3 and granted(limits.requests, "key:ab12", 1) == 1
    # the two limits count apart: ann's requests did not use her reflections
    assert limits.reflections.remaining("ann") == 2 and granted(limits.reflections, "ann", 3) == 2


def test_refusal_says_what_and_when(limits):
    granted(limits.reflections, "bo", 2)
    with pytest.raises(RateLimitExceeded, match=r"user 'bo': at most 2 reflections per 3600 s; try again in") as info:
        limits.reflections.acquire("bo")
    exc = info.value
    # the window is an hour and the grants are seconds old: the next one frees in about an hour
    assert 3000 < exc.retry_after <= 3600 and (exc.capacity, exc.period, exc.what) == (2, 3600.0, "reflections")
    granted(limits.requests, "bo", 3)
    with pytest.raises(RateLimitExceeded, match="at most 3 requests per 60 s") as info:
        limits.requests.acquire("bo")
    assert 0 < info.value.retry_after <= 60
    assert limits.stats()["refused"] == {"requests": 1, "reflections": 1}


# ------------------------------------------------------------------ across nodes
def test_two_nodes_on_one_redis_share_the_count(redis_url):
    a, b = two_nodes(redis_url, requests="5/minute")
    assert a.shared and b.shared
    got = [granted(node.requests, "ann", 1) for node in (a, b, a, b, a, b, a, b)]
    assert sum(got) == 5 and got[5:] == [0, 0, 0]  # the 6th request was refused, whichever node took it
    assert a.requests.remaining("ann") == b.requests.remaining("ann") == 0
    assert b.requests.remaining("cy") == 5  # another identity is untouched on both nodes


def test_the_limit_holds_under_concurrency_across_nodes(redis_url):
    nodes = two_nodes(redis_url, requests="25/minute")
    counts = [0] * 8
    start = threading.Barrier(8)

    def worker(i: int) -> None:
        start.wait()
        counts[i] = granted(nodes[i % 2].requests, "hammer", 10)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 25  # 80 attempts on two nodes, exactly the limit granted
    assert all(node.stats()["degraded"] is False for node in nodes)


def test_keys_live_under_the_configured_prefix(redis_url):
    url, prefix = redis_url
    limits = RateLimits.from_env({"LATTICE_REDIS_URL": url, "LATTICE_REDIS_PREFIX": prefix})
    limits.reflections.acquire("ann")
    keys = redis.Redis.from_url(url).keys(f"{prefix}:*")
    assert keys == [f"{prefix}:rate:reflections/ann/10/1/minute".encode()]


# ------------------------------------------------------------------ Redis down
def test_redis_down_fails_soft_to_process_limits_with_a_warning(caplog):
    store = RateStore(f"redis://127.0.0.1:{free_port()}/0", prefix="lt-closed", retry_s=60.0)
    limits = RateLimits("3/minute", store=store)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert granted(limits.requests, "ann", 5) == 3  # still limited, by this node alone
        assert limits.requests.remaining("ann") == 0
    stats = limits.stats()
    assert stats["shared"] and stats["degraded"] and stats["storage_errors"] == 1 and stats["memory_decisions"] == 6
    lost = [r for r in caplog.records if r.name == LOGGER and "unreachable" in r.getMessage()]
    assert len(lost) == 1  # one line per outage, not one per request


def test_from_env_with_redis_down_starts_degraded_not_broken(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        limits = RateLimits.from_env({"LATTICE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    assert limits.shared and limits.store.degraded
    assert any("unreachable" in r.getMessage() for r in caplog.records)
    limits.reflections.acquire("ann")  # served from memory


class PrivateRedis:
    """A redis-server of this test's own on ``port`` (no persistence), stopped by its pid."""

    def __init__(self, port: int, workdir: Path):
        self.port, self.workdir, self.proc = port, workdir, None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed (needed to take a Redis down and up)", "LATTICE_REQUIRE_REDIS")
    server = PrivateRedis(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_lost_then_back_shares_again(private_redis, caplog):
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    # retry_s=0: every call tries Redis, so the test needs no waiting
    a, b = (RateLimits("4/minute", store=RateStore(url, prefix="lt-roundtrip", retry_s=0.0)) for _ in range(2))
    assert granted(a.requests, "ann", 1) == 1 and b.requests.remaining("ann") == 3  # shared
    with caplog.at_level(logging.INFO, logger=LOGGER):
        private_redis.stop()
        assert granted(a.requests, "ann", 6) == 4  # node a alone: its own memory count
        assert a.store.degraded and a.stats()["storage_errors"] >= 1
        private_redis.start()  # empty again: no persistence
        assert granted(a.requests, "ann", 1) == 1 and not a.store.degraded
        assert b.requests.remaining("ann") == 3  # b sees a's grant made after the return
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("answers again; counts are shared" in m for m in messages) == 1


# ------------------------------------------------------------------ Workbench
@pytest.fixture
def demo_store(sqlite_url):
    store = Store.open(sqlite_url)
    ensure_demo(store)
    yield store
    store.close()


def test_workbench_reflections_are_refused_after_the_limit_on_any_node(demo_store, redis_url):
    url, prefix = redis_url
    node_a, node_b = (Workbench(demo_store, router=build_router("offline"),
                                rate_limits=RateLimits(reflections="2/minute", store=RateStore(url, prefix=prefix)))
                      for _ in range(2))
    assert node_a.rate_limiter is node_a.rate_limits.reflections
    "".join(node_a.reflect("demo", "What is a phasor?", RIA))
    "".join(node_b.reflect("demo", "What does half-life mean?", RIA))
    version = demo_store.version("demo")
    for node in (node_a, node_b):
        with pytest.raises(RateLimitExceeded, match="user 'ria': at most 2 reflections per 60 s"):
            node.reflect("demo", "What is coherence?", RIA)
    # refused before anything was read or written
    assert demo_store.version("demo") == version and len(demo_store.list_reflections("demo")) == 2
    assert node_b.metrics()["rate_limits"]["refused"]["reflections"] == 1


def test_workbench_defaults_from_env_and_keeps_a_given_limiter(demo_store, monkeypatch, caplog):
    monkeypatch.delenv("LATTICE_REDIS_URL", raising=False)
    monkeypatch.setenv("LATTICE_REFLECTION_RATE_LIMIT", "1/hour")
    import core.service.rate_limits as rate_limits
    monkeypatch.setattr(rate_limits, "_warned_unshared", False)  # as in a fresh process
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        wb = Workbench(demo_store, router=build_router("offline"))
    assert "per process" in caplog.text and wb.rate_limits.reflections.limit == "1 per 1 hour"
    "".join(wb.reflect("demo", "What is a phasor?", RIA))
    with pytest.raises(RateLimitExceeded):
        wb.reflect("demo", "What is a phasor?", RIA)
    own = UserRateLimiter(capacity=100)
    assert Workbench(demo_store, router=build_router("offline"), rate_limiter=own).rate_limiter is own
