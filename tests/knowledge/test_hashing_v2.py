"""hashing-v2: hashing-v1's features weighted by a static English IDF, under its own name."""
import numpy as np
import pytest

from core.errors import LatticeError
from core.knowledge import get_embedder
from core.knowledge.hashing_v2 import IDF_FLOOR, idf
from core.knowledge.word_frequency import UNLISTED_ZIPF, zipf, zipf_table


def test_the_table_is_shipped_and_common_words_weigh_little():
    assert len(zipf_table()) > 20000
    assert zipf("the") > 7 and zipf("xiamen") == UNLISTED_ZIPF
    assert idf("the") == IDF_FLOOR and idf("you") == IDF_FLOOR
    assert idf("movie") < idf("violin") < idf("xiamen") == 1.0


def test_registered_under_a_new_name_at_any_dimension_and_v1_unchanged():
    v2 = get_embedder("hashing-v2")
    assert (v2.name, v2.dim) == ("hashing-v2", 1024)
    assert get_embedder("hashing-v2-256").dim == 256
    v1 = get_embedder("hashing-v1")
    assert v1.name == "hashing-v1"
    text = ["Emily: I read One Hundred Years of Solitude in the library."]
    assert not np.allclose(v1.embed(text), v2.embed(text))


def test_deterministic_per_text_and_unit_rows():
    a, b = get_embedder("hashing-v2"), get_embedder("hashing-v2")
    texts = ["I like classical music", "", "Xiamen trip, Gulangyu island", "I like classical music"]
    ea = a.embed(texts)
    eb = b.embed(texts[::-1])[::-1]  # another instance, another order: same rows
    assert ea.dtype == np.float32 and np.array_equal(ea, eb)
    assert np.allclose(np.linalg.norm(ea[[0, 2]], axis=1), 1.0, atol=1e-6) and not ea[1].any()
    # a text's embedding does not depend on what else is embedded (static IDF)
    assert np.array_equal(a.embed(["Xiamen trip, Gulangyu island"])[0], ea[2])


def test_common_words_no_longer_decide_the_match():
    emb = get_embedder("hashing-v2")
    v1 = get_embedder("hashing-v1")
    question = "What did you tell me about my violin?"
    gems = ["Can you tell me what you think about that? What did you mean?",
            "I have been practising the violin every day."]
    for e, winner in ((v1, 0), (emb, 1)):
        q, g = e.embed([question]), e.embed(gems)
        assert int(np.argmax(g @ q[0])) == winner


def test_bad_input_is_a_clear_error():
    with pytest.raises(LatticeError, match="expected a string"):
        get_embedder("hashing-v2").embed(["ok", 3])
    with pytest.raises(LatticeError, match=">= 16"):
        from core.knowledge import HashingEmbedderV2
        HashingEmbedderV2(8)
