"""The fast hashing-v1 embedder gives, bit for bit, what the plain per-feature loop gives.

Lattices store embeddings made by ``hashing-v1``; queries are embedded later, maybe by a
newer release. So the vectorised implementation must not drift: the reference
(``benchmarks.knowledge.hashing_v1_reference``) is the original loop, kept as the
specification (the benchmark times the two against each other).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.knowledge import hashing_v1_reference
from core.knowledge import HashingEmbedder, embed_in_batches
from core.errors import LatticeError


TRICKY = ["", "   ", "!!! ??? ---", "one", "x y", "a_b__c 12 3.4 x", "İstanbul ÇAĞ straße ǅemal ΑΣ Σ",
          "\u0130\u0307 ok", "Wave wave WAVE wave.", "tab\tand\nnewline\x00nul", "日本語 テキスト 中文", "🙂 emoji 🙂"]


ASCII = st.text(alphabet=st.characters(max_codepoint=127), max_size=80)  # the translate-and-split path


@given(st.lists(st.text(max_size=80) | ASCII | st.sampled_from(TRICKY), max_size=20), st.sampled_from([16, 17, 64, 1024]))
@settings(max_examples=150, deadline=None)
def test_bit_for_bit_equal_to_the_reference_loop(texts, dim):
    emb = HashingEmbedder(dim)
    first = emb.embed(texts)
    assert first.dtype == np.float32 and first.shape == (len(texts), dim)
    np.testing.assert_array_equal(first, hashing_v1_reference(texts, dim))
    np.testing.assert_array_equal(emb.embed(texts), first)  # memoised words give the same bits


def test_many_chunks_and_batches_and_a_forgetful_memo_agree():
    rng = np.random.default_rng(0)
    vocab = [f"w{k}" for k in range(3000)] + TRICKY
    texts = [" ".join(rng.choice(vocab, size=rng.integers(0, 40))) for _ in range(700)]
    expected = hashing_v1_reference(texts)
    np.testing.assert_array_equal(HashingEmbedder().embed(texts), expected)  # > one 256-text chunk
    forgetful = HashingEmbedder()
    forgetful._MEMO_LIMIT = 50  # forgets its memo mid-way, many times
    np.testing.assert_array_equal(embed_in_batches(forgetful, texts, batch_size=37), expected)


def test_rows_are_unit_or_zero_and_never_nan():
    vecs = HashingEmbedder().embed(["wave phase memory", "", "... ,,,", "Signal signal SIGNAL"])
    assert np.isfinite(vecs).all()
    norms = np.linalg.norm(vecs.astype(np.float64), axis=1)
    np.testing.assert_allclose(norms[[0, 3]], 1.0, rtol=1e-6)
    assert norms[1] == norms[2] == 0.0


def test_threads_sharing_one_embedder_get_the_same_vectors():
    emb = HashingEmbedder()
    texts = [f"thread text number {k} about waves and phases {k * 7}" for k in range(400)]
    expected = hashing_v1_reference(texts)
    results: list[np.ndarray] = []
    workers = [threading.Thread(target=lambda: results.append(emb.embed(texts))) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(results) == 4
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_a_non_string_is_a_clear_error():
    with pytest.raises(LatticeError, match="text 1 is int, expected a string"):
        HashingEmbedder().embed(["fine", 3])
