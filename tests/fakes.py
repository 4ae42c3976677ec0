"""Test doubles shared by the knowledge, router and reflection tests: fake clock, mock LLM endpoints.

The OpenAI and Anthropic SDKs are exercised through their real client classes with
an ``httpx2.MockTransport``: no network, no key.
"""
from __future__ import annotations

import json
from typing import Callable, Iterable

import httpx2
import numpy as np
import pytest

from core.knowledge import HashingEmbedder
from core.engine import Lattice
from core.engine import LatticeParams


class FakeClock:
    """Manual clock; ``sleep`` advances it and records the delays asked for."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# ------------------------------------------------------------------ SSE bodies
def sse(events: Iterable[dict], event_field: str = "type") -> bytes:
    return "".join(f"event: {e[event_field]}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def openai_events(text_parts: list[str], model: str = "gpt-test", usage: tuple[int, int] = (12, 5)) -> list[dict]:
    evs = [{"type": "response.created", "sequence_number": 0,
            "response": {"id": "resp_1", "object": "response", "status": "in_progress", "output": [],
                         "model": model}}]
    for n, part in enumerate(text_parts, start=1):
        evs.append({"type": "response.output_text.delta", "sequence_number": n, "item_id": "msg_1",
                    "output_index": 0, "content_index": 0, "delta": part, "logprobs": []})
    evs.append({"type": "response.completed", "sequence_number": len(text_parts) + 1,
                "response": {"id": "resp_1", "object": "response", "status": "completed", "output": [],
                             "model": model,
                             "usage": {"input_tokens": usage[0], "output_tokens": usage[1],
                                       "total_tokens": sum(usage),
                                       "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                                       "output_tokens_details": {"reasoning_tokens": 0}}}})
    return evs


def anthropic_events(text_parts: list[str], model: str = "claude-test", usage: tuple[int, int] = (20, 7)) -> list[dict]:
    evs = [{"type": "message_start",
            "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
                        "stop_reason": None, "stop_sequence": None,
                        "usage": {"input_tokens": usage[0], "output_tokens": 1}}},
           {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
    evs += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
            for p in text_parts]
    evs += [{"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
             "usage": {"output_tokens": usage[1]}},
            {"type": "message_stop"}]
    return evs


def stream_response(events: list[dict]) -> httpx2.Response:
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse(events))


def broken_stream_response(events: list[dict], after: int) -> httpx2.Response:
    """A stream that sends ``after`` events and then loses the connection."""
    def body():
        for e in events[:after]:
            yield sse([e])
        raise httpx2.ReadError("connection reset by peer")
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())


class Endpoint:
    """A scripted mock endpoint: each request gets the next response (or exception)."""

    def __init__(self, script: list[Callable[[httpx2.Request], httpx2.Response] | httpx2.Response | Exception]):
        self.script = list(script)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if not self.script:
            raise AssertionError(f"unexpected extra request #{len(self.requests)} to {request.url}")
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise type(item)(str(item), request=request) if isinstance(item, httpx2.RequestError) else item
        if isinstance(item, httpx2.Response):
            return item
        return item(request)

    @property
    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests]


def openai_client(endpoint: Endpoint):
    import openai

    return openai.OpenAI(api_key="test", base_url="http://mock.invalid/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(endpoint)))


def anthropic_client(endpoint: Endpoint):
    import anthropic

    return anthropic.Anthropic(api_key="test", base_url="http://mock.invalid", max_retries=0,
                               http_client=httpx2.Client(transport=httpx2.MockTransport(endpoint)))


# ------------------------------------------------------------------ small lattice
GEM_TEXTS = [
    "The Kuramoto model describes coupled phase oscillators. Above a critical coupling they synchronize.",
    "Fireflies in Southeast Asia flash in unison. Their synchrony emerges from local coupling.",
    "Exponential decay halves a quantity every half-life. Radioactive nuclei decay this way.",
    "Spaced repetition fights the forgetting curve. Reviews at growing intervals keep memories strong.",
    "A write-ahead log makes database commits durable. SQLite uses WAL mode for concurrent readers.",
    "Interference of waves adds amplitudes. Opposite phases cancel and equal phases reinforce.",
]
GEM_IDS = ["kuramoto", "fireflies", "decay", "spacing", "wal", "waves"]


@pytest.fixture
def small_world():
    """(lattice, texts, embeddings, embedder) with 6 readable gems."""
    emb = HashingEmbedder()
    vecs = emb.embed(GEM_TEXTS)
    lat = Lattice(energy=[1.0, 2.0, 1.5, 0.5, 3.0, 1.2], phase=[0.0, 0.3, 2.0, 4.0, 1.0, 5.5],
                  coherence=[0.9, 0.8, 0.6, 0.95, 0.7, 0.4], uncertainty=[0.1, 0.2, 0.7, 0.05, 0.3, 0.9],
                  params=LatticeParams(k=3, min_score=0.02), ids=GEM_IDS)
    return lat, list(GEM_TEXTS), vecs, emb


def random_world(n: int = 300, d: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, d)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    lat = Lattice(energy=rng.uniform(0.5, 3, n), phase=rng.uniform(0, 2 * np.pi, n),
                  coherence=rng.uniform(0, 1, n), uncertainty=rng.uniform(0, 1, n),
                  ids=[f"g{i}" for i in range(n)])
    return lat, vecs, rng
