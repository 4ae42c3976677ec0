"""Sweeps and the parameter search beyond one process (issue 14, item 7): in-process, a local
process pool and a Dask LocalCluster give the same tables bit for bit, on the shipped
MemoryBank set and on a planted timeline; the executor is chosen by size and environment;
progress and cancel work per chunk and leave no worker behind; an unreachable scheduler is a
clear error before anything runs."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import psutil
import pytest

from core.access import SYSTEM
from core.engine import Cancelled
from core.errors import LatticeError, ValidationError
from core.evaluation import corpus_from_store, load_questions, optimise, question_set
from core.evaluation import parallel
from core.evaluation.grid import parse_axis, sweep_outcomes
from core.evaluation.parallel import PointRunner, choose_executor, chunked, resolve_workers
from core.evaluation.synthetic import planted_timeline
from tests.conftest import ROOT

DATA = ROOT / "data" / "memorybank-en"


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster
    from core.evaluation.parallel import plain_main
    with plain_main():  # the cluster's worker processes start here: never re-run a page script
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with cluster as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def planted():
    return planted_timeline(questions=80, distractors=600, half_life=48.0, seed=11)


@pytest.fixture
def memorybank(sqlite_url):
    from core.store import Store
    store = Store.open(sqlite_url)
    store.import_path("memorybank", DATA / "gems.jsonl", SYSTEM, preset="memory")
    corpus = corpus_from_store(store, "memorybank")
    store.close()
    return corpus, load_questions(DATA / "questions.jsonl")


def three_ways(run, scheduler):
    """The same call in-process, on a pool of 2 processes and on the Dask cluster."""
    return (run(executor="inline"), run(executor="process", workers=2),
            run(executor="dask", scheduler=scheduler))


def test_a_planted_sweep_is_the_same_table_on_every_executor(planted, cluster):
    axes = [parse_axis("half_life=3h:1000h:5:log"), parse_axis("coherence_floor=0:0.6:3")]
    inline, pool, dask = three_ways(lambda **kw: sweep_outcomes(planted.corpus, planted.questions, axes, ks=(1, 5),
                                                                seed=3, query_embeddings=planted.query_embeddings,
                                                                **kw), cluster)
    assert len(inline) == 15 and inline["mrr"].nunique() > 1  # a real sweep, not a constant table
    pd.testing.assert_frame_equal(inline, pool, check_exact=True)
    pd.testing.assert_frame_equal(inline, dask, check_exact=True)


def test_the_memorybank_sweep_is_the_same_table_on_every_executor(memorybank, cluster):
    corpus, questions = memorybank
    axes = [parse_axis("half_life=1h:1y:6:log", corpus.params.time_unit)]
    inline, pool, dask = three_ways(lambda **kw: sweep_outcomes(corpus, questions, axes, corpus.params, **kw), cluster)
    assert len(inline) == 6 and inline["recall@10"].nunique() > 1
    pd.testing.assert_frame_equal(inline, pool, check_exact=True)
    pd.testing.assert_frame_equal(inline, dask, check_exact=True)
    # the default (chosen by size: 6 x 100 x 566 cells is small) is the in-process table too
    pd.testing.assert_frame_equal(inline, sweep_outcomes(corpus, questions, axes, corpus.params), check_exact=True)


def test_the_search_finds_the_same_trials_on_every_executor(planted, cluster):
    runs = three_ways(lambda **kw: optimise(planted.corpus, planted.questions, {"half_life": (1.0, 2000.0, True),
                                                                               "coherence_floor": (0.0, 0.5, False)},
                                            trials=12, batch=6, seed=5, ks=(1, 5),
                                            query_embeddings=planted.query_embeddings, **kw), cluster)
    first = runs[0]
    assert len(first.trials) == 12
    for other in runs[1:]:
        pd.testing.assert_frame_equal(first.trials, other.trials, check_exact=True)
        assert other.best_settings == first.best_settings and other.best == first.best


def test_the_executor_is_chosen_by_size_and_environment(monkeypatch):
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    monkeypatch.delenv(parallel.WORKERS_ENV, raising=False)
    big = parallel.MIN_PARALLEL_CELLS
    assert choose_executor(None, 48, big, workers=2) == "process"
    assert choose_executor(None, 48, big - 1, workers=2) == "inline"  # small work: a pool costs more
    assert choose_executor(None, 1, 100 * big, workers=2) == "inline"  # one point: nothing to share
    assert choose_executor(None, 48, big, workers=1) == "inline"
    monkeypatch.setenv(parallel.WORKERS_ENV, "1")
    assert resolve_workers() == 1 and choose_executor(None, 48, big) == "inline"
    monkeypatch.setenv(parallel.WORKERS_ENV, "3")
    assert resolve_workers() == 3 and resolve_workers(2) == 2
    monkeypatch.setenv(parallel.SCHEDULER_ENV, "tcp://example:8786")
    assert choose_executor(None, 2, 1.0, workers=2) == "dask"  # a named cluster is used, whatever the size
    monkeypatch.delenv(parallel.WORKERS_ENV)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 1)
    assert choose_executor(None, 2, 1.0) == "dask"  # one local CPU: still the cluster
    assert choose_executor(None, 2, 1.0, workers=1) == "inline"  # unless one worker is asked for
    monkeypatch.delenv(parallel.SCHEDULER_ENV)
    assert choose_executor(None, 48, 100 * big) == "inline"  # one local CPU, no cluster
    monkeypatch.setenv(parallel.SCHEDULER_ENV, "tcp://example:8786")
    for bad in ("0", "two", "1.5", "-2"):
        monkeypatch.setenv(parallel.WORKERS_ENV, bad)
        with pytest.raises(ValidationError, match=parallel.WORKERS_ENV):
            resolve_workers()
    monkeypatch.delenv(parallel.SCHEDULER_ENV)
    with pytest.raises(ValidationError, match="inline, process, dask"):
        choose_executor("threads", 4, 1.0)
    with pytest.raises(ValidationError, match=parallel.SCHEDULER_ENV):
        choose_executor("dask", 4, 1.0)


def test_points_go_in_contiguous_near_equal_chunks():
    points = list(range(10))
    assert chunked(points, 4) == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert chunked(points[:3], 8) == [[0], [1], [2]]
    assert chunked(points, 1) == [points]


def test_progress_comes_per_chunk_and_a_stop_leaves_no_worker(planted):
    points = [(f"point {i}", "lattice", planted.corpus.params.replace(coherence_floor=f))
              for i, f in enumerate(np.linspace(0, 0.5, 8))]
    seen = []
    with PointRunner(planted.corpus, planted.questions, ks=(1, 5), query_embeddings=planted.query_embeddings,
                     executor="process", workers=2) as runner:
        out = runner.run(points, progress=seen.append)
        pids = [p.pid for p in runner._pool._processes.values()]
    assert all(r is not None for r in out) and seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 2
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)

    calls = []
    with PointRunner(planted.corpus, planted.questions, ks=(1, 5), query_embeddings=planted.query_embeddings,
                     executor="process", workers=2) as runner:
        stopped = runner.run(points * 4, progress=calls.append, should_stop=lambda: len(calls) > 0)
        assert runner._pool is None  # torn down on the stop, its workers terminated and joined
    assert any(r is None for r in stopped)
    assert [r.label for r in stopped if r is not None] == [p[0] for p, r in zip(points * 4, stopped) if r is not None]
    with pytest.raises(Cancelled, match="stopped"):
        sweep_outcomes(planted.corpus, planted.questions, [parse_axis("coherence_floor=0:0.5:8")], ks=(1, 5),
                       query_embeddings=planted.query_embeddings, executor="process", workers=2,
                       should_stop=lambda: True)


def test_bad_input_fails_here_before_a_worker_starts(planted):
    wrong = question_set([{"question": "q", "asked_at": float(planted.corpus.lattice.t), "evidence": ["nope"]}])
    with PointRunner(planted.corpus, wrong, executor="process", workers=2,
                     query_embeddings=planted.query_embeddings[:1]) as runner:
        with pytest.raises(ValidationError, match="'nope' is not in lattice"):
            runner.run([("p", "lattice", planted.corpus.params)] * 4)
        assert runner._pool is None
    with pytest.raises(ValidationError, match="query_embeddings"):
        sweep_outcomes(planted.corpus, planted.questions, [parse_axis("coherence_floor=0:1:3")],
                       query_embeddings=planted.query_embeddings[:, :5], executor="process", workers=2)
    with pytest.raises(ValidationError, match="unknown ranker|ranker"):
        PointRunner(planted.corpus, planted.questions, executor="process", workers=2,
                    query_embeddings=planted.query_embeddings).run([("x", "no-such-ranker", planted.corpus.params)])


def test_an_unreachable_scheduler_is_named_and_nothing_runs(planted, monkeypatch):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_S", 1.0)
    address = f"tcp://127.0.0.1:{closed_port()}"
    monkeypatch.setenv(parallel.SCHEDULER_ENV, address)
    calls = []
    with pytest.raises(LatticeError) as err:
        sweep_outcomes(planted.corpus, planted.questions, [parse_axis("coherence_floor=0:1:3")],
                       query_embeddings=planted.query_embeddings, progress=calls.append)
    assert parallel.SCHEDULER_ENV in str(err.value) and address in str(err.value) and calls == []


def test_the_corpus_travels_without_its_embedder(planted):
    shipped = pickle.loads(pickle.dumps(parallel._shippable(planted.corpus)))
    assert np.array_equal(shipped.embeddings, planted.corpus.embeddings) and shipped.ids == planted.corpus.ids
    with pytest.raises(LatticeError, match="not sent to evaluation workers"):
        shipped.embedder.embed(["a question"])


def closed_port() -> int:
    """A localhost port nobody listens on (bound a moment ago, then released)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_worker_is_a_clear_error_and_a_user_error_on_a_worker_keeps_its_field(planted):
    points = [(f"point {i}", "lattice", planted.corpus.params) for i in range(4)]
    with PointRunner(planted.corpus, planted.questions, ks=(1,), query_embeddings=planted.query_embeddings,
                     executor="process", workers=2) as runner:
        runner.run(points)
        for proc in list(runner._pool._processes.values()):
            proc.kill()
            proc.join()
        with pytest.raises(LatticeError, match=f"worker process died.*{parallel.WORKERS_ENV}"):
            runner.run(points)
        assert runner._pool is None
    with pytest.raises(ValidationError) as err:
        parallel._raise_worker_error(("ValidationError", "k", "k: got [0]; each k must be a whole number >= 1"))
    assert err.value.field == "k" and str(err.value) == "k: got [0]; each k must be a whole number >= 1"
    with pytest.raises(LatticeError, match="FitError on a worker"):
        parallel._raise_worker_error(("FitError", "", "too few points"))


def test_a_stop_on_the_cluster_cancels_its_chunks_and_the_cluster_stays_usable(planted, cluster):
    points = [(f"point {i}", "lattice", planted.corpus.params.replace(coherence_floor=f))
              for i, f in enumerate(np.linspace(0, 0.5, 16))]
    calls = []
    with PointRunner(planted.corpus, planted.questions, ks=(1, 5), query_embeddings=planted.query_embeddings,
                     executor="dask", scheduler=cluster) as runner:
        stopped = runner.run(points, progress=calls.append, should_stop=lambda: len(calls) > 0)
        assert any(r is None for r in stopped) and calls and calls[0] < 1.0
        again = runner.run(points, progress=calls.append)
    inline = PointRunner(planted.corpus, planted.questions, ks=(1, 5), query_embeddings=planted.query_embeddings,
                         executor="inline").run(points)
    assert [r.report.overall["mrr"].value for r in again] == [r.report.overall["mrr"].value for r in inline]
    assert all(np.array_equal(a, b) for x, y in zip(again, inline) for a, b in zip(x.ranks, y.ranks))
