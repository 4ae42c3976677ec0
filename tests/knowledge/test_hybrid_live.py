"""The hybrid retriever in the live paths: a lattice whose parameters say ``retriever=hybrid``
ranks a question identically through the evaluation bench (evaluate()), search() (the CLI and
the REST API) and a reflection (the engine, on the Workbench's lattice cache), on the shipped
MemoryBank data; a similarity lattice ranks as plain resonance() does. And the pieces: the
resonance cache key, the engine's index, the lattice cache building the index once per content."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from core.access import SYSTEM
from core.engine import Lattice, lambda_for_half_life, preset_params
from core.errors import LatticeError
from core.evaluation import corpus_from_store, evaluate, question_set
from core.knowledge import (HybridIndex, ResonanceCache, cache_key, get_embedder, hybrid_resonance, rank_question,
                            resonance)
from core.reflection import ReflectionEngine
from core.service import Workbench, search
from core.store import Store

DATA = Path(__file__).resolve().parents[2] / "data" / "memorybank-en"


@pytest.fixture(scope="module")
def memorybank(tmp_path_factory):
    """The shipped MemoryBank gems in one memory lattice (hashing-v2, hybrid, floor), advanced to
    the questions' time; the questions without their per-user scope (search ranks every gem).

    A fast fade with a low floor and k = 3, so that the gem the rule keeps in the last slot
    matters (on this data the most similar gem and the best fused one differ for 40 of the 100
    questions). Set at creation: the import ages the gems under the lattice's decay, and the
    bench re-derives coherence from each gem's events under the point's."""
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('mb') / 'mb.db'}")
    params = preset_params("memory").replace(k=3, coherence_floor=0.2, lambda_=lambda_for_half_life(72.0))
    store.import_path("mb", DATA / "gems.jsonl", SYSTEM, params=params)
    rows = [json.loads(line) for line in (DATA / "questions.jsonl").read_text().splitlines()]
    info = store.info("mb")
    store.advance("mb", info.lattice_time(datetime.fromisoformat(rows[0]["asked_at"])) - info.t, SYSTEM)
    yield store, rows
    store.close()


def _questions(store, rows):
    t = store.info("mb").t
    return question_set([{**{k: v for k, v in r.items() if k != "scope"}, "asked_at": t} for r in rows])


def _live_ranks(result: dict, evidence) -> np.ndarray:
    at = {g["gem_id"]: g["rank"] for g in result["gems"]}
    return np.array([at.get(e, np.inf) for e in evidence], dtype=float)


def _agree(store, rows, retriever: str) -> dict:
    """Every question through evaluate(), search() (cache and store reads) and the reflection
    engine's ranking; returns counts and asserts agreement."""
    qs = _questions(store, rows)
    params = store.info("mb").params
    assert params.retriever == retriever
    result = evaluate(corpus_from_store(store, "mb"), qs, explain=False)[0]
    wb = Workbench(store)
    engine, _ = wb.engine("mb", SYSTEM)
    kept = 0
    for q, ranks in zip(qs, result.ranks):
        live = search(store, "mb", q.question, lattices=wb.lattices, embedder=wb.embedder)
        assert live["retriever"] == retriever
        ids = [g["gem_id"] for g in live["gems"]]
        assert [g.gem_id for g in engine.rank(q.question).gems] == ids, q.id
        np.testing.assert_array_equal(_live_ranks(live, q.evidence), np.where(ranks <= params.k, ranks, np.inf),
                                      err_msg=q.id)
        kept += any(g.get("kept_as_most_similar") for g in live["gems"])
    one_shot = search(store, "mb", qs.questions[0].question)  # the CLI's read: from the store, index built once
    assert [g["gem_id"] for g in one_shot["gems"]] == [g["gem_id"] for g in search(
        store, "mb", qs.questions[0].question, lattices=wb.lattices, embedder=wb.embedder)["gems"]]
    return {"kept": kept, "builds": wb.lattices.stats()["hybrid_builds"], "wb": wb, "questions": qs}


def test_hybrid_ranks_alike_in_evaluate_search_and_reflection(memorybank):
    store, rows = memorybank
    assert store.info("mb").embedder == "hashing-v2"
    out = _agree(store, rows, "hybrid")
    assert out["kept"] > 0  # some ranking took the kept-gem path: the rule is exercised
    assert out["builds"] == 1  # one index for 100 questions (and the engine's rankings)
    gems = search(store, "mb", "What did we talk about on May 2nd?")["gems"]
    assert {"bm25", "date_match", "fused", "similarity"} <= set(gems[0])
    # a reflection's ranking, and the gems it used, are search()'s
    wb, q = out["wb"], out["questions"].questions[0].question
    before = [g["gem_id"] for g in search(store, "mb", q, lattices=wb.lattices, embedder=wb.embedder)["gems"]]
    record = wb.reflect("mb", q, SYSTEM).result()
    assert [g["gem_id"] for g in record.gems] == before
    used = [g["gem_id"] for g in record.gems if g["included"]]
    assert used and set(used) <= set(before)
    assert all("fused" in g for g in record.gems)


def test_a_similarity_lattice_ranks_as_resonance(memorybank):
    store, rows = memorybank
    store.update_params("mb", store.info("mb").params.replace(retriever="similarity"), SYSTEM)
    out = _agree(store, rows, "similarity")
    assert out["builds"] == 0  # no hybrid index is built for a similarity lattice
    loaded = store.load("mb")
    emb = get_embedder(loaded.info.embedder)
    for r in rows[:20]:
        direct = resonance(emb.embed([r["question"]])[0], loaded.embeddings(), loaded.lattice, loaded.info.params)
        live = search(store, "mb", r["question"])["gems"]
        assert [g["gem_id"] for g in live] == [g.gem_id for g in direct.gems]
        assert [g["score"] for g in live] == [g.score for g in direct.gems]
        assert not {"bm25", "fused", "date_match"} & set(live[0]) if live else True


# ------------------------------------------------------------------ the pieces
def test_rank_question_dispatches_on_the_retriever():
    texts = ["the cat sat on the mat", "dogs chase cats", "a note about stars"]
    emb = get_embedder("hashing-v2")
    vecs = emb.embed(texts)
    p = preset_params("memory")
    lat = Lattice(np.ones(3), np.zeros(3), np.ones(3), np.full(3, 0.1), params=p)
    q = emb.embed(["cats"])[0]
    index = HybridIndex(texts)
    hyb = rank_question(q, "cats", vecs, lat, p, index)
    assert hyb.retriever == "hybrid" and hyb.gems == hybrid_resonance(q, "cats", vecs, lat, index, p).gems
    calls = []
    sim = rank_question(q, "cats", vecs, lat, p.replace(retriever="similarity"), lambda: calls.append(1))
    assert sim.gems == resonance(q, vecs, lat, p.replace(retriever="similarity")).gems and not calls
    with pytest.raises(LatticeError, match="no hybrid index"):
        rank_question(q, "cats", vecs, lat, p, None)


def test_cache_key_tells_hybrid_questions_apart():
    q = np.ones(8, dtype=np.float32)
    p = preset_params("memory")
    a = cache_key(q, "l", 1, p, "e", "talk on May 2nd")
    assert a != cache_key(q, "l", 1, p, "e", "talk on May 3rd")  # one embedding, two date terms
    assert a == cache_key(q, "l", 1, p, "e", "talk on May 2nd")
    assert cache_key(q, "l", 1, p, "e") != cache_key(q, "l", 1, p.replace(retriever="similarity"), "e")


def test_engine_builds_its_index_once_and_caches_per_question_text():
    texts = ["Emily read One Hundred Years of Solitude in the library", "Frank likes jazz", "stars at night"]
    emb = get_embedder("hashing-v2")
    p = preset_params("memory").replace(min_score=0.0)
    lat = Lattice(np.ones(3), np.zeros(3), np.ones(3), np.full(3, 0.1), params=p, ids=["a", "b", "c"])
    engine = ReflectionEngine(lat, texts, emb.embed(texts), emb)
    first = engine.rank("which novel did Emily read?")
    assert first.retriever == "hybrid" and first.gems[0].gem_id == "a" and first.gems[0].bm25 > 0
    index = engine.hybrid_index()
    assert engine.hybrid_index() is index  # built once from the texts
    engine.rank("which novel did Emily read?")
    assert engine.cache.stats().hits == 1


def test_the_lattice_cache_rebuilds_the_index_only_when_texts_change(store):
    store.import_path("mb", DATA / "gems.jsonl", SYSTEM, preset="memory")
    wb = Workbench(store, cache=ResonanceCache())
    count = lambda: wb.lattices.stats()["hybrid_builds"]  # noqa: E731
    q = "I recommended a science fiction movie before, what was it?"
    top = search(store, "mb", q, lattices=wb.lattices, embedder=wb.embedder)["gems"][0]["gem_id"]
    assert count() == 1
    wb.reflect("mb", q, SYSTEM).result()  # observes gems: state only
    store.advance("mb", 5.0, SYSTEM)  # an evolution: the state read whole, same content
    search(store, "mb", "what did Emily read?", lattices=wb.lattices, embedder=wb.embedder)
    assert count() == 1
    # an edit of a gem's text: a new content key, one rebuild, and BM25 sees the new words
    other = store.gem_texts("mb").iloc[-1]["id"]
    gem = store.get_gem("mb", other)
    store.update_gem("mb", other, SYSTEM, expected_version=gem["version"],
                     content="Zyzzyva quokka recommended a science fiction movie: The Wandering Earth")
    hit = search(store, "mb", "zyzzyva quokka", lattices=wb.lattices, embedder=wb.embedder)["gems"]
    assert count() == 2 and hit[0]["gem_id"] == other and hit[0]["bm25"] > 0
    assert top != other
