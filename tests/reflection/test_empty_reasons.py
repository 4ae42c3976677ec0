"""A reflection with nothing to answer from names the real cause (issue 13, item 4), and the
scoring rule's terms reach the record and the prompt."""
from __future__ import annotations

import numpy as np
import pytest

from core.access import Actor
from core.engine import Lattice, LatticeParams
from core.knowledge import HashingEmbedder
from core.reflection import MemorySink, ReflectionEngine, ReflectionServices, build_prompt, get_token_counter
from core.router import LLMRouter, OfflineProvider

from tests.fakes import FakeClock

ANN = Actor("ann", "researcher")
QUESTION = "What makes coupled oscillators like fireflies synchronize?"


class NeverCalled:
    name, model = "never", "none"

    def availability(self):
        return True, ""

    def stream(self, request, timeout):
        raise AssertionError("the LLM must not be called when nothing resonates")


def engine(world, name="small", router=None):
    lat, texts, vecs, emb = world
    clock = FakeClock()
    services = ReflectionServices(router=router or LLMRouter([OfflineProvider()], clock=clock, sleep=clock.sleep),
                                  clock=clock, wall=lambda: 1_700_000_000.0, sink=MemorySink())
    return ReflectionEngine(lat, texts, vecs, emb, services, lattice_name=name)


def test_decay_under_product_is_named_with_the_half_life_and_the_remedies(small_world):
    lat = small_world[0]
    lat.evolve(8.0)  # 8 hours at half-life 42 min x E: every s·c^α falls below 0.02
    eng = engine(small_world, router=LLMRouter([NeverCalled()]))
    reflection = eng.reflect(QUESTION, ANN)
    text = "".join(reflection)
    rec = reflection.record
    assert rec.nothing_resonated and rec.provider is None and rec.gems == []
    assert text.startswith("Nothing in lattice 'small' resonates") and "nothing to answer from" in text
    n = reflection.ranking.n_similar
    assert n >= 2 and f"{n} gems match the question (similarity >= 0.02), but decay has brought" in text
    assert "raise the half-life (now 42 min)" in text and "switch the scoring rule to floor" in text
    assert "reset the demo" not in text  # not the demo lattice
    assert rec.ranking["explanation"] in text and rec.ranking["scoring"] == "product"
    assert rec.ranking["n_similar"] == n and rec.ranking["best_resonance"] < 0.02
    assert eng.sink.state_changes == []  # nothing observed


def test_the_demo_is_told_it_can_be_reset(small_world):
    small_world[0].evolve(8.0)
    text = "".join(engine(small_world, name="demo").reflect(QUESTION, ANN))
    assert "reset the demo (python -m core demo --reset)" in text


def test_no_similar_gem_says_so_and_what_to_do(small_world):
    lat = small_world[0]
    lat.params = lat.params.replace(min_score=0.9)
    reflection = engine(small_world).reflect(QUESTION, ANN)
    text = "".join(reflection)
    assert "No gem is similar enough to the question (best similarity" in text
    assert "< minimum 0.9): add gems on this topic, rephrase, or lower the minimum score." in text
    assert reflection.record.ranking["n_similar"] == 0


def test_an_empty_lattice_says_it_has_no_gems():
    emb = HashingEmbedder(64)
    world = (Lattice(), [], np.zeros((0, 64), dtype=np.float32), emb)
    text = "".join(engine(world).reflect(QUESTION, ANN))
    assert "Nothing in lattice 'small' resonates" in text and "no gems yet" in text


def test_floor_scoring_answers_from_the_same_decayed_lattice_with_its_terms(small_world):
    lat = small_world[0]
    lat.evolve(8.0)
    lat.params = lat.params.replace(scoring="floor", coherence_floor=0.3)
    eng = engine(small_world)
    rec = eng.reflect(QUESTION, ANN).result()
    assert not rec.nothing_resonated and rec.provider == "offline"
    assert {"kuramoto", "fireflies"} & {g["gem_id"] for g in rec.gems if g["included"]}
    for g in rec.gems:
        assert g["floor"] == 0.3 and "kept_as_most_similar" in g and "relevance" not in g
        assert g["resonance"] == pytest.approx(g["similarity"] * (0.3 + 0.7 * g["coherence_factor"]))
    assert rec.ranking["scoring"] == "floor" and "explanation" not in rec.ranking


def test_the_kept_most_similar_gem_is_marked_in_the_prompt(small_world):
    lat, texts, vecs, emb = small_world
    q = emb.embed([QUESTION])[0]
    sims = vecs @ q
    best = int(np.argmax(sims))
    coherence = np.full(len(lat), 1.0)
    coherence[best] = 0.0
    decayed = Lattice(energy=lat.energy, phase=lat.phase, coherence=coherence, uncertainty=lat.uncertainty,
                      ids=lat.ids, params=LatticeParams(scoring="floor", coherence_floor=0.0, k=1, min_score=0.0))
    eng = engine((decayed, texts, vecs, emb))
    ranking = eng.rank(QUESTION)
    assert [g.index for g in ranking] == [best] and ranking.gems[0].kept_as_most_similar
    prompt = build_prompt(QUESTION, ranking, texts, vecs, None, get_token_counter())
    assert f"[{lat.ids[best]}] (coherence 0.00," in prompt.messages[-1]["content"]
    assert "the most similar gem, kept although faded" in prompt.messages[-1]["content"]
    rec = eng.reflect(QUESTION, ANN).result()
    assert rec.gems[0]["kept_as_most_similar"] is True
