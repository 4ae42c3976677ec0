"""Offline answers on topic (issue 14, item 4): the share of answer sentences whose cited gem
is on the question's topic, the unfiltered answerer (``extractive-v1``) against the one that
keeps only sentences answering the question (``extractive-v2``, the default).

Second, re-coherence crowding (item 4): the quality of question 2 alone and after question 1
on another topic was asked first (:func:`crowding`): a reflection re-coheres the gems it used,
and under the floor rule a re-cohered gem's score can grow by up to 1/φ (φ the coherence
floor), enough for a weakly similar gem of question 1 to push a better match of question 2 out
of its top k. Measured a week on (the demo decayed), for φ = 0.3 (the memory preset's floor
when this was written) and φ = 0.6 (the value proposed for it).

``python -m benchmarks.answers [--json]``. The shipped demo lattice (memory preset) in a
temporary SQLite store, asked :data:`QUESTIONS` (five on-topic questions per demo topic, the
first tag of every demo gem) in order through the Workbench with the offline router, as a
user would; both answerers answer from the same retrieved gems of each reflection. Printed
as shares (on-topic sentences / all sentences) and the number of answers carrying at least
one off-topic sentence: a ratio, no timing.
"""
from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

QUESTIONS: dict[str, tuple[str, ...]] = {
    "synchronization": ("How do coupled oscillators synchronize in the Kuramoto model?",
                        "What does the Kuramoto order parameter measure?",
                        "Why do fireflies flash in synchrony?",
                        "How did Huygens see pendulum clocks synchronize?",
                        "What are chimera states in coupled oscillators?"),
    "memory": ("Ebbinghaus forgetting curve: how does forgetting follow the savings method?",
               "What is the spacing effect in learning?",
               "How does sleep help memory consolidation?",
               "What is working memory capacity?",
               "How does retrieval practice strengthen memory?"),
    "rag": ("How does retrieval-augmented generation use embeddings and vector search?",
            "How does BM25 rank documents for a query?",
            "What is reciprocal rank fusion in hybrid search?",
            "Why do language models hallucinate?",
            "How are documents split into chunks for retrieval?"),
    "waves": ("What is constructive and destructive interference of waves in the double-slit experiment?",
              "How does the fringe spacing depend on the wavelength?",
              "What is the superposition principle for waves?",
              "How does a Michelson interferometer work?",
              "What produces beats between two close frequencies?"),
    "decay": ("What is the half-life of a radioactive isotope?",
              "How does radiocarbon dating work?",
              "What is exponential decay?",
              "How does a capacitor discharge in an RC circuit?",
              "What is Newton's law of cooling?"),
    "databases": ("How does a database write-ahead log make transactions durable?",
                  "What does ACID mean for database transactions?",
                  "How does PostgreSQL MVCC keep readers from blocking writers?",
                  "What is the CAP theorem?",
                  "What does fsync guarantee for durability?"),
    "astronomy": ("Why do we add leap seconds to UTC and what is a sidereal day?",
                  "How do atomic clocks keep time?",
                  "What causes the precession of the equinoxes?",
                  "Why are there two tides a day?",
                  "What does Kepler's third law say about orbits?"),
}
_CITE = re.compile(r"\[([^\[\]]+)\]")


def cited(answer: str, gem_ids: set[str]) -> list[str]:
    """The gem ids an offline answer cites, one per answer sentence (its ``[gem-id]``), in order;
    the trailing stale note repeats ids and is left out, and brackets in a gem's own text
    that name no gem (``[A]``) are not citations."""
    body = answer.split(" (Note: ")[0]
    return [g for g in _CITE.findall(body) if g in gem_ids]


def run() -> dict:
    """Ask every question once; both answerers on each reflection's own sources."""
    from core.access import Actor, Role
    from core.reflection import UserRateLimiter
    from core.router import OfflineProvider, Source, build_router
    from core.service import DEMO_NAME, Workbench, ensure_demo
    from core.store import Store

    actor = Actor("bench", Role.RESEARCHER)
    answerers = {"before (extractive-v1)": OfflineProvider(min_relevance=0.0, relative_relevance=0.0, gem_relevance=0.0),
                 "after (extractive-v2)": OfflineProvider()}
    tally = {name: {"sentences": 0, "on_topic": 0, "answers_with_off_topic": 0, "empty": 0} for name in answerers}
    examples = []
    with tempfile.TemporaryDirectory() as tmp, Store.open(f"sqlite:///{Path(tmp) / 'b.db'}") as store:
        ensure_demo(store)
        texts = store.gem_texts(DEMO_NAME)
        topic_of = {gid: tags[0] for gid, tags in zip(texts["id"], texts["tags"])}
        wb = Workbench(store, router=build_router("offline"), rate_limiter=UserRateLimiter(capacity=1000))
        for topic, questions in QUESTIONS.items():
            for question in questions:
                reflection = wb.reflect(DEMO_NAME, question, actor)
                reflection.result()
                gem_text = wb.lattices.get(DEMO_NAME).texts  # what the engine hands the provider
                sources = tuple(Source(g.gem_id, gem_text[g.index], g.coherence, g.uncertainty, g.score)
                                for g in reflection.prompt.included)
                for name, answerer in answerers.items():
                    ids = cited(answerer.answer(question, sources), set(topic_of))
                    on = sum(topic_of[g] == topic for g in ids)
                    t = tally[name]
                    t["sentences"] += len(ids)
                    t["on_topic"] += on
                    t["answers_with_off_topic"] += on < len(ids)
                    t["empty"] += not ids
                    if on < len(ids):
                        examples.append({"answerer": name, "topic": topic, "question": question,
                                         "off_topic": [g for g in ids if topic_of[g] != topic]})
    for t in tally.values():
        t["on_topic_share"] = round(t["on_topic"] / t["sentences"], 4) if t["sentences"] else 0.0
    return {"questions": sum(map(len, QUESTIONS.values())), "answerers": tally, "off_topic_examples": examples}


# question 2 of each pair: the demo-alive question of its topic (tests/service/test_demo_alive.py)
SECOND = {topic: questions[0] for topic, questions in QUESTIONS.items()}


def crowding(settings: dict | None = None, hours: float = 168.0, first: int = 3, embedder: str | None = None) -> dict:
    """Question 2 alone against question 2 after ``first`` questions of another topic, over
    every ordered pair of demo topics (42), on the demo evolved ``hours`` (lattice hours) under
    its memory preset with ``settings`` (parameter name -> value) over it, re-embedded with
    ``embedder`` if given (default: the demo's own, hashing-v2 for a memory lattice).

    Per pair, from a freshly rebuilt demo: q2's top k and offline answer alone, then after the
    questions of topic 1 (each reflection read to the end, so its gems re-cohere). Returns the
    on-topic share of q2's top k and of its answer sentences, alone and after, the pairs where
    a gem off q2's topic entered its top k, and how many of those were gems question 1 used.
    """
    import itertools

    from core.access import SYSTEM, Actor, Role
    from core.reflection import UserRateLimiter
    from core.router import build_router
    from core.service import DEMO_NAME, Workbench, ensure_demo
    from core.store import Store

    actor = Actor("bench", Role.RESEARCHER)
    with tempfile.TemporaryDirectory() as tmp, Store.open(f"sqlite:///{Path(tmp) / 'c.db'}") as store:
        ensure_demo(store)
        texts = store.gem_texts(DEMO_NAME)
        topic_of = {gid: tags[0] for gid, tags in zip(texts["id"], texts["tags"])}

        def fresh() -> Workbench:
            ensure_demo(store, rebuild=True)
            if embedder and store.info(DEMO_NAME).embedder != embedder:
                store.reembed(DEMO_NAME, embedder, SYSTEM)
            if settings:
                store.update_params(DEMO_NAME, store.info(DEMO_NAME).params.replace(**settings), SYSTEM)
            if hours:
                store.simulate(DEMO_NAME, hours, SYSTEM)
            return Workbench(store, router=build_router("offline"), rate_limiter=UserRateLimiter(capacity=1000))

        def ask(wb: Workbench, question: str) -> tuple[list[str], list[str], list[str]]:
            reflection = wb.reflect(DEMO_NAME, question, actor)
            record = reflection.result()
            return ([g.gem_id for g in reflection.ranking.gems], [g.gem_id for g in reflection.prompt.included],
                    cited(record.answer, set(topic_of)))

        alone = {topic: ask(fresh(), q) for topic, q in SECOND.items()}
        k, floor = store.info(DEMO_NAME).params.k, store.info(DEMO_NAME).params.coherence_floor
        store_embedder = store.info(DEMO_NAME).embedder
        pairs = []
        for x, y in itertools.permutations(SECOND, 2):
            wb, used = fresh(), set()
            for q1 in QUESTIONS[x][:first]:
                used |= set(ask(wb, q1)[1])
            top, _, answer = ask(wb, SECOND[y])
            intruders = [g for g in top if g not in alone[y][0] and topic_of[g] != y]
            pairs.append({"first": x, "second": y, "on_topic_alone": sum(topic_of[g] == y for g in alone[y][0]),
                          "on_topic_after": sum(topic_of[g] == y for g in top), "intruders": intruders,
                          "used_by_first": [g for g in intruders if g in used],
                          "answer_on_topic": [sum(topic_of[g] == y for g in alone[y][2]) / max(len(alone[y][2]), 1),
                                              sum(topic_of[g] == y for g in answer) / max(len(answer), 1)]})
    n = len(pairs)
    return {"settings": settings or {}, "embedder": store_embedder, "coherence_floor": floor, "hours": hours,
            "first_questions": first, "pairs": n, "k": k,
            "top_k_on_topic_alone": round(sum(p["on_topic_alone"] for p in pairs) / (n * k), 4),
            "top_k_on_topic_after": round(sum(p["on_topic_after"] for p in pairs) / (n * k), 4),
            "answer_on_topic_alone": round(sum(p["answer_on_topic"][0] for p in pairs) / n, 4),
            "answer_on_topic_after": round(sum(p["answer_on_topic"][1] for p in pairs) / n, 4),
            "pairs_crowded": sum(bool(p["intruders"]) for p in pairs),
            "intruders_used_by_first": sum(len(p["used_by_first"]) for p in pairs),
            "intruders": sum(len(p["intruders"]) for p in pairs), "detail": pairs}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = run()
    crowd = [crowding({"coherence_floor": 0.3}), crowding({"coherence_floor": 0.6})]
    if args.json:
        print(json.dumps({"answers": out, "crowding": crowd}, indent=2))
        return
    print(f"{out['questions']} on-topic questions on the demo lattice (memory preset), offline answers")
    print(f"{'answerer':<24} {'sentences':>9} {'on topic':>9} {'share':>7} {'answers w/ off-topic':>21}")
    for name, t in out["answerers"].items():
        print(f"{name:<24} {t['sentences']:>9} {t['on_topic']:>9} {t['on_topic_share']:>7.3f} "
              f"{t['answers_with_off_topic']:>21}")
    for ex in out["off_topic_examples"]:
        print(f"  {ex['answerer']}: [{ex['topic']}] {ex['question']} -> off topic {', '.join(ex['off_topic'])}")
    c = crowd[0]
    print(f"\nQuestion 2 alone vs after {c['first_questions']} questions on another topic, {c['pairs']} topic "
          f"pairs, demo {c['hours']:g} h on (memory preset)")
    print(f"{'floor':<24} {'top-k on topic':>16} {'answer on topic':>16} {'pairs crowded':>14} {'by q1 gems':>11}")
    from core.engine import preset_params

    shipped = preset_params("memory").coherence_floor
    for c in crowd:
        name = f"φ = {c['coherence_floor']:g}" + (" (memory preset)" if c["coherence_floor"] == shipped else "")
        print(f"{name:<24} {c['top_k_on_topic_alone']:>7.3f}->{c['top_k_on_topic_after']:<7.3f} "
              f"{c['answer_on_topic_alone']:>7.3f}->{c['answer_on_topic_after']:<7.3f} "
              f"{c['pairs_crowded']:>9}/{c['pairs']:<4} {c['intruders_used_by_first']:>5}/{c['intruders']}")


if __name__ == "__main__":
    main()
