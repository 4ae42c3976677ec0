"""LLM providers: OpenAI (Responses API), Anthropic (Messages API), offline extractive.

The SDK clients are created with ``max_retries=0`` (the router runs the only retry
loop) and a per-call ``timeout``. Models come from ``OPENAI_MODEL`` /
``ANTHROPIC_MODEL`` or the defaults below. A provider without a key reports itself
unavailable and the router skips it, visibly.
"""
from __future__ import annotations

import os
import re
from typing import Any, Iterator, Mapping

import numpy as np

from core.errors import ValidationError
from core.knowledge.hashing import HashingEmbedder
from core.router.base import Delta, LLMRequest, ProviderError, Source, StreamItem, Usage, as_messages

DEFAULT_OPENAI_MODEL = "gpt-5.5"
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-5-5"

# OpenAI stream error codes that are worth another attempt
_OPENAI_RETRYABLE_CODES = {"server_error", "rate_limit_exceeded", "overloaded", "timeout"}


class OpenAIProvider:
    """OpenAI Responses API, streamed (``client.responses.create(..., stream=True)``).

    Parameters
    ----------
    model : str, optional
        Default ``OPENAI_MODEL`` or ``gpt-5.5``.
    api_key : str, optional
        Default ``OPENAI_API_KEY``; without one the provider is unavailable.
    client : openai.OpenAI, optional
        A ready client (tests pass one with an ``httpx2.MockTransport``).
    base_url : str, optional
        Another endpoint speaking the same API.
    """

    name = "openai"

    def __init__(self, model: str | None = None, *, api_key: str | None = None, client: Any = None,
                 base_url: str | None = None, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self.model = model or env.get("OPENAI_MODEL") or DEFAULT_OPENAI_MODEL
        self._api_key = api_key if api_key is not None else env.get("OPENAI_API_KEY")
        self._client = client
        self._base_url = base_url

    def availability(self) -> tuple[bool, str]:
        if self._client is not None or self._api_key:
            return True, ""
        return False, "no OPENAI_API_KEY set"

    def _get_client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(api_key=self._api_key, base_url=self._base_url, max_retries=0)
        return self._client

    def stream(self, request: LLMRequest, timeout: float) -> Iterator[StreamItem]:
        stream = self._get_client().responses.create(
            model=self.model, instructions=request.system, input=as_messages(request.messages),
            max_output_tokens=request.max_output_tokens, stream=True, timeout=timeout)
        try:
            for event in stream:
                kind = getattr(event, "type", "")
                if kind == "response.output_text.delta":
                    if event.delta:
                        yield Delta(event.delta)
                elif kind in ("response.completed", "response.incomplete"):
                    usage = getattr(getattr(event, "response", None), "usage", None)
                    if usage is not None:
                        yield Usage(getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None))
                elif kind == "response.failed":
                    err = getattr(getattr(event, "response", None), "error", None)
                    code = getattr(err, "code", None)
                    raise ProviderError(f"OpenAI response failed: {code}: {getattr(err, 'message', '')}",
                                        retryable=code in _OPENAI_RETRYABLE_CODES)
                elif kind == "error":
                    code = getattr(event, "code", None)
                    raise ProviderError(f"OpenAI stream error: {code}: {getattr(event, 'message', '')}",
                                        retryable=code in _OPENAI_RETRYABLE_CODES)
        finally:
            stream.close()


class AnthropicProvider:
    """Anthropic Messages API, streamed (``client.messages.create(..., stream=True)``).

    Parameters
    ----------
    model : str, optional
        Default ``ANTHROPIC_MODEL`` or ``claude-sonnet-5-5``.
    api_key : str, optional
        Default ``ANTHROPIC_API_KEY``; without one the provider is unavailable.
    client : anthropic.Anthropic, optional
        A ready client (tests pass one with an ``httpx2.MockTransport``).
    """

    name = "anthropic"

    def __init__(self, model: str | None = None, *, api_key: str | None = None, client: Any = None,
                 base_url: str | None = None, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self.model = model or env.get("ANTHROPIC_MODEL") or DEFAULT_ANTHROPIC_MODEL
        self._api_key = api_key if api_key is not None else env.get("ANTHROPIC_API_KEY")
        self._client = client
        self._base_url = base_url

    def availability(self) -> tuple[bool, str]:
        if self._client is not None or self._api_key:
            return True, ""
        return False, "no ANTHROPIC_API_KEY set"

    def _get_client(self) -> Any:
        if self._client is None:
            import anthropic

            self._client = anthropic.Anthropic(api_key=self._api_key, base_url=self._base_url, max_retries=0)
        return self._client

    def stream(self, request: LLMRequest, timeout: float) -> Iterator[StreamItem]:
        stream = self._get_client().messages.create(
            model=self.model, system=request.system, messages=as_messages(request.messages),
            max_tokens=request.max_output_tokens, stream=True, timeout=timeout)
        input_tokens = None
        try:
            for event in stream:
                kind = getattr(event, "type", "")
                if kind == "message_start":
                    input_tokens = getattr(getattr(event.message, "usage", None), "input_tokens", None)
                elif kind == "content_block_delta":
                    delta = event.delta
                    if getattr(delta, "type", "") == "text_delta" and delta.text:
                        yield Delta(delta.text)
                elif kind == "message_delta":
                    usage = getattr(event, "usage", None)
                    yield Usage(input_tokens, getattr(usage, "output_tokens", None))
        finally:
            stream.close()


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Function words and question words: they say how a question is asked, not what it is about.
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing done down during each either else even
ever every few for from further get gets got had has have having he her here hers him his how
however i if in into is it its itself just least less like made make makes many may me might
more most much must my near need no nor not now of off often on once one only or other our out
over own per rather same she should since so some such than that the their them then there these
they this those though through thus to too under until up upon us use used uses using very was
we well were what when where whether which while who whom whose why will with within without
would yet you your explain describe tell mean means meant thing things way ways kind
""".split())


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences at ., ! or ? followed by space and a capital/digit."""
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def content_words(text: str) -> set[str]:
    """The words of ``text`` that carry its topic: lower-cased, at least 3 characters, not a
    stop word, a plural ``-s``/``-ies`` folded (``oscillators`` matches ``oscillator``,
    ``queries`` matches ``query``)."""
    out = set()
    for w in _WORD.findall(text.lower()):
        if len(w) < 3 or w in STOP_WORDS:
            continue
        if len(w) > 4 and w.endswith("ies"):
            w = w[:-3] + "y"
        elif len(w) > 4 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
        out.add(w)
    return out


def sentence_relevance(question: str, sentences: list[str], owner: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How much of the question each sentence answers, and how much its gem does, in [0, 1].

    A sentence's relevance is the IDF-weighted share of the question's content words
    (:func:`content_words`) it contains; its gem's relevance the same share over all the
    sentences of that gem (``owner[i]``: the gem of sentence ``i``; default one gem per
    sentence). IDF is taken over ``sentences`` themselves (the retrieved texts), smoothed:
    ``idf(w) = ln(1 + (n + 1) / (df(w) + 0.5))`` with ``n`` sentences and ``df(w)`` of them
    containing ``w``, so a question word found in every retrieved sentence weighs least. The
    denominator counts every content word of the question (a word no sentence has weighs the
    most), so 1 means every topic word is there. A question without content words gives
    every sentence and gem 1 (nothing to filter on). Returns three arrays of
    ``len(sentences)``: sentence relevance, gem relevance, and how many distinct question
    words the sentence's gem contains.
    """
    n = len(sentences)
    owner = np.arange(n) if owner is None else np.asarray(owner, dtype=np.int64)
    qwords = sorted(content_words(question))
    if not n:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    if not qwords:
        return np.ones(n), np.ones(n), np.zeros(n, dtype=np.int64)
    present = np.array([[w in ws for w in qwords] for ws in map(content_words, sentences)], dtype=np.float64)
    idf = np.log1p((n + 1.0) / (present.sum(axis=0) + 0.5))
    idf /= idf.sum()
    gem_present = np.zeros((int(owner.max()) + 1, len(qwords)))
    np.maximum.at(gem_present, owner, present)
    return present @ idf, (gem_present @ idf)[owner], gem_present.sum(axis=1).astype(np.int64)[owner]


class OfflineProvider:
    """Deterministic, extractive answers from the retrieved gems' own sentences.

    Every sentence of every source is scored against the question by
    ``0.5 * cosine(hashing embeddings) + 0.5 * word overlap`` (overlap = share of the
    question's words found in the sentence), times the source's resonance score
    share (a better-resonating gem wins a tie). Only sentences that answer the question
    are kept: a sentence's *relevance* (:func:`sentence_relevance`, the IDF-weighted share
    of the question's content words it contains) must reach ``min_relevance`` and
    ``relative_relevance`` times the best sentence's, and its gem's relevance (the same share
    over the whole gem) ``gem_relevance`` times the best gem's, and that gem must hold
    two of the question's content words (or be the best gem): a gem on another topic that
    shares one incidental word with the question gives no sentence. The best sentence
    is always kept, so
    an answer is never empty when gems were retrieved. Of those, the best ``max_sentences``
    are composed in score order, each followed by its gem id as ``[gem-id]``. Needs
    nothing outside the process and never raises. All three thresholds 0 give the
    unfiltered answerer (``extractive-v1``, benchmarks/answers.py compares the two).
    """

    name = "offline"
    model = "extractive-v2"

    def __init__(self, max_sentences: int = 3, chunk_words: int = 3, stale_uncertainty: float = 0.5,
                 min_relevance: float = 0.2, relative_relevance: float = 0.5, gem_relevance: float = 2 / 3):
        self.max_sentences = int(max_sentences)
        self.stale_uncertainty = float(stale_uncertainty)
        self.chunk_words = max(1, int(chunk_words))
        self.min_relevance = float(min_relevance)
        self.relative_relevance = float(relative_relevance)
        self.gem_relevance = float(gem_relevance)
        thresholds = (self.min_relevance, self.relative_relevance, self.gem_relevance)
        if not all(0.0 <= x <= 1.0 for x in thresholds):
            raise ValidationError("min_relevance", "the offline answerer's relevance thresholds (min_relevance, "
                                  "relative_relevance, gem_relevance) must lie in [0, 1] (shares of the "
                                  f"question's topic words); got {min_relevance!r}, {relative_relevance!r}, "
                                  f"{gem_relevance!r}")
        self.filtering = any(thresholds)
        if not self.filtering:
            self.model = "extractive-v1"
        self._embedder = HashingEmbedder()

    def availability(self) -> tuple[bool, str]:
        return True, ""

    def answer(self, question: str, sources: tuple[Source, ...]) -> str:
        """The full extractive answer (deterministic for the same inputs)."""
        if not sources:
            return "No gems were retrieved, so there is nothing to answer from."
        sents: list[str] = []
        owner: list[int] = []
        for si, src in enumerate(sources):
            for s in split_sentences(src.text):
                sents.append(s)
                owner.append(si)
        if not sents:
            return "The retrieved gems contain no text to answer from."
        owner_arr = np.asarray(owner)
        vecs = self._embedder.embed([question, *sents]).astype(np.float64)
        cos = np.maximum(vecs[1:] @ vecs[0], 0.0)
        qwords = {w.lower() for w in _WORD.findall(question) if len(w) > 2}
        overlap = np.array([len(qwords & {w.lower() for w in _WORD.findall(s)}) / len(qwords) if qwords else 0.0
                            for s in sents])
        scores = np.array([max(src.score, 0.0) for src in sources])
        weight = 0.5 + 0.5 * (scores / scores.max() if scores.max() > 0 else np.ones_like(scores))
        total = (0.5 * cos + 0.5 * overlap) * weight[owner_arr]
        order = np.lexsort((np.arange(len(sents)), -total))  # score desc, then document order
        relevance, gem_relevance, gem_words = sentence_relevance(question, sents, owner_arr)
        bar = max(self.min_relevance, self.relative_relevance * float(relevance.max()))
        best_gem = float(gem_relevance.max())
        relevant = (relevance >= bar - 1e-12) & (gem_relevance >= self.gem_relevance * best_gem - 1e-12)
        if self.gem_relevance > 0:
            # a gem sharing a single topic word with a question of several is on another topic,
            # unless no gem does better
            need = min(2, len(content_words(question)))
            relevant &= (gem_words >= need) | (gem_relevance >= best_gem - 1e-12)
        picked = [int(i) for i in order if total[i] > 0 and relevant[i]][: self.max_sentences]
        if not picked:
            if relevance.max() > 0 and self.filtering:
                # nothing scored above zero but a sentence shares topic words: the most relevant one
                picked = [int(np.lexsort((np.arange(len(sents)), -total, -relevance))[0])]
            else:  # no sentence answers anything: the best gem's first sentence (as extractive-v1)
                picked = [int(np.flatnonzero(owner_arr == 0)[0])]
        parts = []
        for i in picked:
            s = sents[i].rstrip()
            gem = sources[owner[i]].gem_id
            parts.append(f"{s} [{gem}]")
        stale = sorted({str(sources[owner[i]].gem_id) for i in picked
                        if sources[owner[i]].uncertainty >= self.stale_uncertainty})
        text = " ".join(parts)
        if stale:
            text += " (Note: " + ", ".join(f"[{g}]" for g in stale) + " may be outdated: high uncertainty.)"
        return text

    def stream(self, request: LLMRequest, timeout: float) -> Iterator[StreamItem]:
        text = self.answer(request.question, request.sources)
        words = text.split(" ")
        for start in range(0, len(words), self.chunk_words):
            chunk = " ".join(words[start:start + self.chunk_words])
            yield Delta(chunk if start + self.chunk_words >= len(words) else chunk + " ")
