"""``ensure_demo`` when several nodes start together on an empty database: exactly one creates
the demo, the others report "already there" (no error), and the demo is whole (its gems and
entanglements once), on SQLite and PostgreSQL, from threads and from processes."""
from __future__ import annotations

import multiprocessing
import threading

import pytest

from core.evaluation.parallel import plain_main
from core.service import DEMO_NAME, ensure_demo, load_demo_records
from core.store import Store

RACERS = 4


def _ensure(url: str) -> bool:
    with Store.open(url) as store:
        return ensure_demo(store)


def _check_whole(url: str) -> None:
    gems, edges = load_demo_records()
    with Store.open(url) as store:
        loaded = store.load(DEMO_NAME)
        assert len(loaded.lattice) == len(gems)
        assert loaded.lattice.n_edges == len(edges)
        assert [i.name for i in store.list_lattices()] == [DEMO_NAME]


def test_racing_threads_create_the_demo_once(db_url):
    Store.open(db_url).close()  # the schema first: racing migrations are not what is tested
    results: list[object] = []
    barrier = threading.Barrier(RACERS)

    def race() -> None:
        barrier.wait()
        try:
            results.append(_ensure(db_url))
        except Exception as exc:  # noqa: BLE001  (the test reports what a loser saw)
            results.append(exc)

    threads = [threading.Thread(target=race) for _ in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == [False] * (RACERS - 1) + [True], results
    _check_whole(db_url)


@pytest.mark.slow
def test_racing_processes_create_the_demo_once(db_url):
    Store.open(db_url).close()
    # plain_main: after an AppTest, __main__ can be a page script that spawned workers would re-run
    # (they then die at start-up and the pool respawns them for ever)
    with plain_main(), multiprocessing.get_context("spawn").Pool(RACERS) as pool:
        results = pool.map(_ensure, [db_url] * RACERS)
    assert sorted(results) == [False] * (RACERS - 1) + [True]
    _check_whole(db_url)


def test_an_existing_demo_is_kept(store):
    assert ensure_demo(store) is True
    version = store.info(DEMO_NAME).version
    assert ensure_demo(store) is False and store.info(DEMO_NAME).version == version
