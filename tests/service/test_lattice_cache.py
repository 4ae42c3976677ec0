"""The Workbench's lattice cache serves exactly what ``Store.load`` + embeddings + texts would,
after any sequence of writes (on SQLite and PostgreSQL), while reading only what changed."""
import numpy as np
import pytest

from core.access import SYSTEM, Actor, Role
from core.router import build_router
from core.service import Workbench, ensure_demo
from core.service.lattice_cache import BUDGET_ENV, LatticeCache, budget_from_env
from core.errors import LatticeError, ValidationError

RESEARCHER = Actor("ria", Role.RESEARCHER)


@pytest.fixture
def demo_store(store):
    ensure_demo(store)
    store.advance("demo", 3.0, SYSTEM)
    return store


def assert_current(cache: LatticeCache, store, name: str = "demo"):
    """The cached lattice equals a fresh load from the store, bit for bit."""
    cached = cache.get(name)
    fresh = store.load(name)
    assert cached.version == fresh.version
    assert list(cached.lattice.ids) == list(fresh.lattice.ids)
    for s in ("energy", "phase", "coherence", "uncertainty"):
        np.testing.assert_array_equal(getattr(cached.lattice, s), getattr(fresh.lattice, s), err_msg=s)
    assert cached.lattice.t == fresh.lattice.t and cached.lattice.params == fresh.lattice.params
    for a, b in zip(cached.lattice.edge_arrays(), fresh.lattice.edge_arrays()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cached.embeddings, store.embeddings(name))
    texts = store.gem_texts(name)["content"].tolist()
    probe = sorted({0, len(texts) // 2, len(texts) - 1}) if texts else []
    assert [cached.texts[i] for i in probe] == [texts[i] for i in probe]
    return cached


def test_nothing_changed_reads_nothing_more(demo_store):
    cache = LatticeCache(demo_store)
    cache.get("demo")
    fetched = cache.counters.embeddings_fetched
    assert fetched == len(demo_store.load("demo").lattice)
    for _ in range(3):
        cache.get("demo")
    assert cache.counters.hits == 3 and cache.counters.embeddings_fetched == fetched


def test_a_reflection_is_applied_from_the_log_without_reading_embeddings(demo_store):
    wb = Workbench(demo_store, router=build_router("offline"))
    "".join(wb.reflect("demo", "What does the Kuramoto order parameter measure?", RESEARCHER))
    fetched = wb.lattices.counters.embeddings_fetched
    texts_fetched = wb.lattices.counters.texts_fetched
    assert 0 < texts_fetched <= demo_store.info("demo").params.k  # the cited texts, not all of them
    "".join(wb.reflect("demo", "How does radioactive decay relate to half-life?", RESEARCHER))
    assert wb.lattices.counters.applied >= 1
    assert wb.lattices.counters.embeddings_fetched == fetched
    assert_current(wb.lattices, demo_store)


def test_a_reinforced_reflection_is_applied_with_its_energies(demo_store):
    """Reinforcement by use changes energies: the cache applies them from the observe
    entry (no state reload) and equals a fresh load bit for bit."""
    demo_store.update_params("demo", {"reinforcement": 1.0, "energy_cap": 16.0}, SYSTEM)
    demo_store.advance("demo", 2.0, SYSTEM)  # coherence below 1: a recall reinforces
    wb = Workbench(demo_store, router=build_router("offline"))
    before = wb.lattices.get("demo").lattice.energy.copy()
    reloads = wb.lattices.counters.state_reloads + wb.lattices.counters.builds
    for question in ("What does the Kuramoto order parameter measure?", "How does radioactive decay relate to "
                     "half-life?", "What does the Kuramoto order parameter measure?"):
        reflection = wb.reflect("demo", question, RESEARCHER)
        "".join(reflection)
        cached = assert_current(wb.lattices, demo_store)
    assert wb.lattices.counters.applied >= 3
    assert wb.lattices.counters.state_reloads + wb.lattices.counters.builds == reloads
    grown = np.flatnonzero(cached.lattice.energy != before)
    assert grown.size and (cached.lattice.energy[grown] > before[grown]).all()
    entries = demo_store.transactions("demo", kinds=["observe"])
    first, last = entries.iloc[0], entries.iloc[-1]
    assert len(first.after["energy"]) == len(first.gem_ids) == len(first.before["energy"])
    # the same question again at once: its gems are at coherence 1, so no energy grows (none logged)
    assert "energy" not in last.after


def test_content_edit_refreshes_that_gem_only(demo_store):
    cache = LatticeCache(demo_store)
    before = cache.get("demo")
    gem = before.lattice.ids[3]
    before.texts[3]  # cached text, must not be served after the edit
    old_row = before.embeddings[3].copy()
    fetched = cache.counters.embeddings_fetched
    demo_store.update_gem("demo", gem, SYSTEM, content="Entirely new words about sourdough baking.")
    after = assert_current(cache, demo_store)
    assert after.texts[3] == "Entirely new words about sourdough baking."
    assert not np.array_equal(after.embeddings[3], old_row)
    assert cache.counters.embeddings_fetched - fetched == 1


def test_evolution_rereads_state_but_keeps_embeddings(demo_store):
    cache = LatticeCache(demo_store)
    cache.get("demo")
    fetched = cache.counters.embeddings_fetched
    demo_store.advance("demo", 2.5, SYSTEM)
    assert_current(cache, demo_store)
    assert cache.counters.state_reloads == 1 and cache.counters.embeddings_fetched == fetched


def test_new_and_archived_gems_fetch_only_the_new_embeddings(demo_store):
    cache = LatticeCache(demo_store)
    cache.get("demo")
    fetched = cache.counters.embeddings_fetched
    demo_store.add_gem("demo", SYSTEM, "A brand new gem about tide pools.", id="new-1")
    demo_store.add_gem("demo", SYSTEM, "Another one, on glacier retreat.", id="new-2")
    first = demo_store.load("demo").lattice.ids[0]
    demo_store.archive_gem("demo", first, SYSTEM)
    cached = assert_current(cache, demo_store)
    assert cache.counters.embeddings_fetched - fetched == 2
    assert "new-1" in cached.lattice.ids and first not in cached.lattice.ids
    demo_store.restore_gem("demo", first, SYSTEM)
    demo_store.delete_gem("demo", "new-2", SYSTEM)
    assert_current(cache, demo_store)


def test_reembedding_replaces_every_cached_embedding(demo_store):
    cache = LatticeCache(demo_store)
    n = len(cache.get("demo").lattice)
    demo_store.reembed("demo", "hashing-v1", SYSTEM)  # same name, every row rewritten: versions do not move
    assert_current(cache, demo_store)
    assert cache.counters.embeddings_fetched == 2 * n


def test_every_sequence_of_writes_is_served_exactly(demo_store):
    """Random writes of every kind, and after each the cache equals a fresh load."""
    rng = np.random.default_rng(7)
    cache = LatticeCache(demo_store)
    other = LatticeCache(demo_store)  # a second node, asked only now and then
    cache.get("demo")
    for step in range(40):
        ids = demo_store.load("demo").lattice.ids
        a, b = (str(x) for x in rng.choice(ids, 2, replace=False))
        op = step % 10
        if op == 0:
            demo_store.observe("demo", [a, b], SYSTEM)
        elif op == 1:
            demo_store.update_gem("demo", a, SYSTEM, coherence=float(rng.uniform(0, 1)), energy=float(rng.uniform(0.1, 3)))
        elif op == 2:
            demo_store.entangle("demo", a, b, float(rng.uniform(0.1, 1)), SYSTEM)
        elif op == 3:
            pairs = demo_store.entanglements("demo")
            if len(pairs):
                demo_store.disentangle("demo", pairs.iloc[0]["source"], pairs.iloc[0]["target"], SYSTEM)
        elif op == 4:
            demo_store.advance("demo", float(rng.uniform(0.1, 2)), SYSTEM)
        elif op == 5:
            demo_store.add_gem("demo", SYSTEM, f"gem number {step} on topic {rng.integers(1000)}", id=f"g{step}")
        elif op == 6:
            demo_store.archive_gem("demo", a, SYSTEM)
        elif op == 7:
            demo_store.update_gem("demo", a, SYSTEM, content=f"rewritten {step}", title=f"t{step}")
        elif op == 8:
            info = demo_store.info("demo")
            demo_store.update_params("demo", {**info.params.to_dict(), "k": int(rng.integers(2, 8))}, SYSTEM)
        else:
            demo_store.apply_reflection("demo", [a, b], SYSTEM)
        if step % 3 == 0:  # several writes between two reads, too
            assert_current(cache, demo_store)
        if step % 7 == 0:
            assert_current(other, demo_store)
    assert_current(cache, demo_store)
    assert cache.counters.applied > 0 and cache.counters.state_reloads > 0


def test_a_failed_refresh_is_forgotten_not_half_applied(demo_store, monkeypatch):
    cache = LatticeCache(demo_store)
    gem = cache.get("demo").lattice.ids[0]
    demo_store.update_gem("demo", gem, SYSTEM, content="new text that needs a new embedding")

    def broken(*args, **kwargs):
        raise LatticeError("database unavailable")

    monkeypatch.setattr(demo_store, "content_rows", broken)
    with pytest.raises(LatticeError, match="unavailable"):
        cache.get("demo")
    assert cache.stats()["lattices"] == 0
    monkeypatch.undo()
    assert_current(cache, demo_store)


def test_budget_evicts_least_recently_used_and_oversize_is_served_uncached(demo_store):
    demo_store.create_lattice("second", SYSTEM)
    demo_store.add_gem("second", SYSTEM, "The only gem of the second lattice.")
    probe = LatticeCache(demo_store)
    probe.get("demo")
    demo_bytes = probe.stats()["bytes"]
    cache = LatticeCache(demo_store, budget_bytes=demo_bytes + 1000)
    cache.get("demo")
    cache.get("second")
    stats = cache.stats()
    assert stats["lattices"] == 1 and stats["evictions"] == 1 and "second" in stats["per_lattice_bytes"]
    assert stats["bytes"] <= stats["budget_bytes"]
    tiny = LatticeCache(demo_store, budget_bytes=0)
    assert_current(tiny, demo_store)
    assert tiny.stats()["lattices"] == 0 and tiny.counters.oversize >= 1


def test_unknown_lattice_is_a_clear_error(demo_store):
    with pytest.raises(LatticeError, match="unknown lattice"):
        LatticeCache(demo_store).get("nope")


@pytest.mark.parametrize("raw", ["lots", "-5", "nan"])
def test_budget_setting_is_checked(raw):
    with pytest.raises(ValidationError, match=BUDGET_ENV):
        budget_from_env({BUDGET_ENV: raw})
    assert budget_from_env({BUDGET_ENV: "64"}) == 64 * 2**20


def test_store_source_on_the_cache_rereads_the_gem_list_only_when_texts_change(demo_store):
    from core.service import StoreSource

    cache = LatticeCache(demo_store)
    source = StoreSource(demo_store, lattices=cache)
    first = source.load("demo")
    gem = first.lattice.ids[0]
    demo_store.apply_reflection("demo", [gem, first.lattice.ids[1]], SYSTEM)
    second = source.load("demo")
    assert second.version > first.version and second.gems is first.gems  # state moved, texts did not
    np.testing.assert_array_equal(second.lattice.coherence, demo_store.load("demo").lattice.coherence)
    demo_store.update_gem("demo", gem, SYSTEM, title="A new title")
    third = source.load("demo")
    assert third.gems is not second.gems and third.gems.loc[0, "title"] == "A new title"
    assert third.gems["id"].tolist() == list(third.lattice.ids)
