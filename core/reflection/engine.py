"""Reflection Engine: question -> resonant gems -> prompt -> streamed answer -> lattice update.

Flow of :meth:`ReflectionEngine.reflect` (docs/architecture.md):

1. permission (``reflect``) and per-user rate limit;
2. embed the question with the lattice's embedder, rank the gems by resonance, with the
   hybrid retriever when the parameters say ``retriever=hybrid`` (through the resonance
   cache, keyed by the lattice version, the parameters and, for the hybrid, the question);
3. nothing passes ``min_score``: say why (:func:`core.knowledge.explain_empty`: no gems, no
   similar gem, or decay under product scoring), no LLM call, no state change;
4. build the prompt: system text, the most resonant gems packed into the token
   budget first (near-duplicates dropped, each annotated with coherence and
   uncertainty, stale ones flagged), the conversation trimmed to its budget, the
   question;
5. stream the answer through the LLM router;
6. when the answer is complete: observe the used gems (re-cohere), entangle or
   strengthen the co-used pairs, hand both to the injected persistence (transaction
   log), bump the lattice version, add the turn to the conversation and produce a
   :class:`ReflectionRecord`. An interrupted answer does not reinforce the lattice.

Persistence is injected (:class:`ReflectionSink`), so the engine runs on a plain
in-memory :class:`~core.engine.lattice.Lattice`; the store implements the same two methods.

What the engine uses beyond the lattice (router, cache, rate limiter, conversations,
token counter, sink, clocks, latency series, prompt settings) comes in one
:class:`~core.reflection.services.ReflectionServices`.
"""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from core.access import Actor, Permission, require
from core.engine.lattice import Lattice, Observation
from core.engine.params import LatticeParams
from core.errors import LatticeError
from core.knowledge.base import Embedder, check_embedder
from core.knowledge.cache import cache_key
from core.knowledge.hybrid import HybridIndex, IndexSource, rank_question
from core.knowledge.resonance import Ranking
from core.knowledge.scoring import explain_empty
from core.reflection.conversation import Conversation
from core.reflection.prompt import Prompt, build_prompt
from core.reflection.records import ReflectionRecord, StateChange, ranking_summary
from core.reflection.services import ReflectionServices
from core.router import LLMRequest, Source


class Reflection:
    """A reflection in progress: iterate for the answer's text chunks, then read ``record``.

    ``st.write_stream(reflection)`` works directly. ``result()`` reads the rest and
    returns the record. The record (and the lattice update) exist only once the
    stream has been read to the end.
    """

    def __init__(self, chunks: Iterator[str], ranking: Ranking, prompt: Prompt | None):
        self._chunks = chunks
        self.ranking = ranking
        self.prompt = prompt
        self.record: ReflectionRecord | None = None

    def __iter__(self) -> Iterator[str]:
        return self._chunks

    def result(self) -> ReflectionRecord:
        for _ in self._chunks:
            pass
        if self.record is None:
            raise LatticeError("this reflection did not complete (its stream failed or was abandoned); ask again")
        return self.record


class ReflectionEngine:
    """Answers questions from a lattice and feeds the observation back into it.

    Parameters
    ----------
    lattice : Lattice
        Gem state (ids = gem ids); updated in place after each complete answer.
    texts : sequence of str
        Gem texts in lattice order: a list, or a lazy sequence with ``prefetch(indices)``
        that reads the cited texts on demand (the Workbench's lattice cache).
    embeddings : ndarray (N, d)
        Gem embeddings (L2-normalised float32) in lattice order.
    embedder : Embedder
        Embeds questions; must be the one that embedded the gems.
    services : ReflectionServices, optional
        Router, sink, cache, rate limiter, conversations, token counter, latency series,
        clocks and prompt settings; default ``ReflectionServices()`` (each part its default).
        Its parts are also the engine's attributes (``engine.router``, ``engine.cache``...).
    embedder_name : str, optional
        The embedder recorded with the lattice (default ``embedder.name``); a
        different query embedder is an :class:`~core.knowledge.base.EmbedderMismatchError`.
    params : LatticeParams, optional
        Ranking parameters; default ``lattice.params``.
    lattice_name : str
    version : int or callable
        Lattice version for the cache key; an int is bumped by the engine after each
        update, a callable (e.g. the store's version) is asked each time.
    hybrid : HybridIndex or callable, optional
        The hybrid retriever's index of the gems (a callable is called on the first ranking
        that needs it), used when the parameters say ``retriever=hybrid``. Default: the
        lattice cache's (``texts.hybrid_index``, built once per content), else one built on
        first use from ``texts`` (no creation days: no date term).
    """

    def __init__(self, lattice: Lattice, texts: Sequence[str], embeddings: np.ndarray, embedder: Embedder,
                 services: ReflectionServices | None = None, *, embedder_name: str | None = None,
                 params: LatticeParams | None = None, lattice_name: str = "default",
                 version: int | Callable[[], Any] = 0, hybrid: IndexSource = None):
        emb = np.asarray(embeddings)
        if len(texts) != len(lattice) or emb.ndim != 2 or emb.shape[0] != len(lattice):
            raise LatticeError(f"lattice has {len(lattice)} gems but {len(texts)} texts and embeddings of "
                               f"shape {emb.shape}; they must match one to one")
        check_embedder(embedder, embedder_name or embedder.name, emb.shape[1])
        # a lazy sequence (core.service.lattice_cache.GemTexts) is kept as it is: it reads the
        # texts a reflection cites on first use, instead of all N texts up front
        texts = texts if hasattr(texts, "prefetch") else list(texts)
        self.lattice, self.texts, self.embeddings, self.embedder = lattice, texts, emb, embedder
        self.params = params
        self.lattice_name = lattice_name
        self._version = version
        s = self.services = services if services is not None else ReflectionServices()
        self.router, self.sink, self.cache, self.rate_limiter = s.router, s.sink, s.cache, s.rate_limiter
        self.counter, self.conversations, self.latency, self.budget = s.counter, s.conversations, s.latency, s.budget
        self.dedup_threshold, self.stale_uncertainty = s.dedup_threshold, s.stale_uncertainty
        self.entangle_increment = s.entangle_increment
        self.clock, self.wall = s.clock, s.wall
        self._lock = threading.RLock()
        self._hybrid: IndexSource = hybrid if hybrid is not None else getattr(texts, "hybrid_index", None)

    # ------------------------------------------------------------ ranking
    @property
    def version(self) -> Any:
        return self._version() if callable(self._version) else self._version

    def bump_version(self) -> None:
        """Declare an outside change of the lattice (edit, import): cached rankings are not reused.

        Only for an integer version; a callable version (the store's) is asked instead.
        """
        if callable(self._version):
            raise LatticeError("this engine's lattice version comes from the store; write through the store")
        with self._lock:
            self._version = int(self._version) + 1

    @property
    def effective_params(self) -> LatticeParams:
        return self.params or self.lattice.params

    def hybrid_index(self) -> HybridIndex:
        """The hybrid retriever's index of the gems (given, the lattice cache's, or built here once)."""
        with self._lock:
            if self._hybrid is None:
                self._hybrid = HybridIndex(list(self.texts))
            if callable(self._hybrid):
                return self._hybrid()  # the lattice cache keeps it (per content): not pinned here
            return self._hybrid

    def rank(self, question: str) -> Ranking:
        """Resonance ranking of ``question`` (cached by query, lattice version, params, embedder;
        the hybrid retriever's also by the question's text)."""
        if not isinstance(question, str) or not question.strip():
            raise LatticeError("the question is empty; type a question to reflect on")
        q = self.embedder.embed([question])[0]
        p = self.effective_params
        hybrid = p.retriever == "hybrid"
        with self._lock:
            # the lattice clock is part of the version: evolving changes coherence without a write
            version = f"{self.version}@t={self.lattice.t!r}"
            key = cache_key(q, self.lattice_name, version, p, self.embedder.name, question if hybrid else None)
            return self.cache.get_or_compute(key, lambda: rank_question(
                q, question, self.embeddings, self.lattice, p, self.hybrid_index if hybrid else None))

    # --------------------------------------------------------- reflection
    def reflect(self, question: str, actor: Actor, session_id: str = "default") -> Reflection:
        """Start a reflection. Raises at once on permission, rate limit or bad input.

        Iterate the returned :class:`Reflection` to stream the answer; afterwards
        ``reflection.record`` holds the :class:`ReflectionRecord`.
        """
        require(actor, Permission.REFLECT, "reflect on the lattice")
        self.rate_limiter.acquire(actor.name)
        t0 = self.clock()
        version = self.version
        ranking = self.rank(question)
        conversation = self.conversations.get(actor.name, session_id)
        if not ranking.gems:
            return self._nothing(question, actor, session_id, ranking, version, t0)
        prefetch = getattr(self.texts, "prefetch", None)
        if prefetch is not None:
            prefetch(ranking.indices)  # one read for the k cited texts
        prompt = build_prompt(question, ranking, self.texts, self.embeddings, conversation, self.counter,
                              self.budget, self.dedup_threshold, self.stale_uncertainty)
        sources = tuple(Source(g.gem_id, self.texts[g.index], g.coherence, g.uncertainty, g.score)
                        for g in prompt.included)
        request = LLMRequest(prompt.system, prompt.messages, question, sources, self.budget.max_output_tokens)
        reflection = Reflection(iter(()), ranking, prompt)
        reflection._chunks = self._run(reflection, request, question, actor, session_id, version, t0, conversation)
        return reflection

    def _nothing(self, question: str, actor: Actor, session_id: str, ranking: Ranking, version: Any,
                 t0: float) -> Reflection:
        p = self.effective_params
        cause = explain_empty(ranking, p, self.lattice_name)
        answer = (f"Nothing in lattice '{self.lattice_name}' resonates with this question, so there is nothing "
                  f"to answer from and no answer was generated. {cause}")
        latency = self.clock() - t0
        record = ReflectionRecord(
            id=uuid.uuid4().hex, created_at=_now_iso(self.wall), user=actor.name, session_id=session_id,
            lattice=self.lattice_name, lattice_version=version, question=question, answer=answer,
            provider=None, model=None, trace=[], gems=[], latency_s=latency, first_token_s=None,
            tokens={"prompt": 0, "completion": 0, "counter": self.counter.name, "exact": self.counter.exact},
            nothing_resonated=True, ranking=ranking_summary(ranking, cause))
        reflection = Reflection(iter(()), ranking, None)

        def chunks() -> Iterator[str]:
            yield answer
            self.sink.record(record)
            self.latency.add(self.wall(), latency)
            reflection.record = record

        reflection._chunks = chunks()
        return reflection

    def _run(self, reflection: Reflection, request: LLMRequest, question: str, actor: Actor, session_id: str,
             version: Any, t0: float, conversation: Conversation) -> Iterator[str]:
        stream = self.router.stream(request)
        first_token: float | None = None
        for chunk in stream:
            if first_token is None:
                first_token = self.clock() - t0
            yield chunk
        answer = stream.text
        prompt = reflection.prompt
        assert prompt is not None
        rid = uuid.uuid4().hex
        observation_info: dict[str, list] = {}
        new_edges: list[tuple[Any, Any, float]] = []
        if not stream.interrupted:
            obs, edges = self._update_lattice([g.index for g in prompt.included], actor, rid)
            ids = self.lattice.ids
            observation_info = {"gems": [ids[i] for i in obs.indices.tolist()],
                                "strength": obs.strength.tolist(),
                                "coherence_before": obs.coherence_before.tolist(),
                                "coherence_after": obs.coherence_after.tolist(),
                                "uncertainty_before": obs.uncertainty_before.tolist(),
                                "uncertainty_after": obs.uncertainty_after.tolist()}
            new_edges = [(ids[i], ids[j], w) for i, j, w in edges]
            conversation.add("user", question)
            conversation.add("assistant", answer)
        latency = self.clock() - t0
        used = {g.gem_id for g in prompt.included}
        reasons = dict(prompt.skipped)
        gems = [{**g.to_dict(), "included": g.gem_id in used, "skip_reason": reasons.get(g.gem_id, "")}
                for g in reflection.ranking.gems]
        record = ReflectionRecord(
            id=rid, created_at=_now_iso(self.wall), user=actor.name, session_id=session_id,
            lattice=self.lattice_name, lattice_version=version, question=question, answer=answer,
            provider=stream.provider, model=stream.model, trace=[a.to_dict() for a in stream.trace], gems=gems,
            latency_s=latency, first_token_s=first_token,
            tokens={"prompt": prompt.prompt_tokens, "completion": self.counter.count(answer),
                    "counter": self.counter.name, "exact": self.counter.exact,
                    "provider_input": stream.usage.input_tokens, "provider_output": stream.usage.output_tokens},
            interrupted=stream.interrupted, observation=observation_info, new_edges=new_edges,
            ranking=ranking_summary(reflection.ranking))
        self.sink.record(record)
        self.latency.add(self.wall(), latency)
        reflection.record = record

    def _update_lattice(self, indices: list[int], actor: Actor, rid: str
                        ) -> tuple[Observation, list[tuple[int, int, float]]]:
        """Observe and entangle; persist through the sink; roll back if persistence fails."""
        with self._lock:
            lat = self.lattice
            pairs = [(min(i, j), max(i, j)) for a, i in enumerate(indices) for j in indices[a + 1:]]
            old_weights = {pair: lat.edge_weight(*pair) for pair in pairs}
            obs = lat.observe(indices)
            edges = lat.strengthen(indices, self.entangle_increment) if len(indices) > 1 else []
            change = StateChange(rid, actor, tuple(lat.ids[i] for i in indices), tuple(indices), obs, tuple(edges),
                                 float(lat.params.eta), self.entangle_increment)
            try:
                self.sink.on_state_change(change)
            except Exception:
                # all of the observation goes back, reinforced energies too (one validated call)
                before = {"coherence": obs.coherence_before, "uncertainty": obs.uncertainty_before}
                if obs.reinforced:
                    before["energy"] = obs.energy_before
                lat.set_states(obs.indices, **before)
                for (i, j), w in old_weights.items():
                    if w > 0:
                        lat.add_edge(i, j, w)
                    elif lat.edge_weight(i, j) > 0:
                        lat.remove_edge(i, j)
                raise
            if not callable(self._version):
                self._version = int(self._version) + 1
            return obs, edges

    # ------------------------------------------------------------ metrics
    def metrics(self) -> dict[str, Any]:
        """Reflection latency p50/p95 and samples, cache stats, router metrics."""
        return {"reflection_latency": self.latency.summary(), "cache": self.cache.stats().to_dict(),
                "router": self.router.metrics_snapshot()}


def _now_iso(wall: Callable[[], float]) -> str:
    return datetime.fromtimestamp(wall(), tz=timezone.utc).isoformat()
