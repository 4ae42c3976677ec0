"""Run an evaluation's parameter points in-process, on a local process pool, or on a Dask cluster.

Long file: one executor abstraction (in-process, process pool, Dask) with its chunking, cancelling,
error mapping and worker start-up, which only make sense together.

Sweeps (:func:`core.evaluation.grid.sweep_outcomes`) and the parameter search
(:func:`core.evaluation.optimise.optimise`) hand their points to a :class:`PointRunner`. The
points are cut into contiguous chunks; each chunk is one :func:`core.evaluation.evaluate` call
on a worker, so a worker computes the (Q, N) similarity matrix once per chunk and re-scores it
per point. The corpus, the questions and their embeddings (the *payload*) travel once per
worker, never per point or per chunk: a process pool receives them in its initializer, a Dask
cluster by one ``scatter(broadcast=True)``.

Executors:

- ``"inline"``: in this process, today's behaviour (``workers=1`` or ``LATTICE_EVAL_WORKERS=1``).
- ``"process"``: a :class:`concurrent.futures.ProcessPoolExecutor` of ``os.cpu_count()``
  workers (or ``workers`` / ``LATTICE_EVAL_WORKERS``), started with ``forkserver`` (never
  ``fork``: the Streamlit server is multi-threaded).
- ``"dask"``: ``dask.distributed.Client(address)`` on ``LATTICE_DASK_SCHEDULER`` (or
  ``scheduler=``), e.g. ``tcp://host:8786``; every worker must be able to import ``core``.

``executor=None`` chooses: Dask when a scheduler address is set; else in-process for small
work (fewer than 2 points, or fewer than :data:`MIN_PARALLEL_CELLS` score cells, points x
questions x gems: starting a pool and sending it the corpus costs 1-3 s, which such a run
cannot win back); else the process pool. ``workers=1`` / ``LATTICE_EVAL_WORKERS=1`` always
means in-process, and so does a one-CPU machine without a cluster.

Identical results whatever the executor: a point's computation depends only on the payload
and the point (its label, ranker and parameters), the bootstrap seed is the run's ``seed``
for every point, and results are put back in point order.
"""
from __future__ import annotations

import copy
import multiprocessing
import os
import sys
import threading
import time
import types
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from core.engine import Cancelled, LatticeParams
from core.errors import LatticeError, ValidationError
from core.evaluation.corpus import EvalCorpus
from core.evaluation.evaluate import PointResult, checked_evidence, evaluate
from core.evaluation.questions import QuestionSet
from core.evaluation.rankers import RANKERS

SCHEDULER_ENV = "LATTICE_DASK_SCHEDULER"
WORKERS_ENV = "LATTICE_EVAL_WORKERS"
EXECUTORS = ("inline", "process", "dask")
# Below this many score cells (points x questions x gems) a run stays in-process. Measured
# (benchmarks/parallel.py): one process scores 3.5-6 ns per cell, so 5e8 cells are ~2-3 s; a
# pool's start-up (forkserver, importing numpy/pandas/core, unpickling the payload) is ~1 s
# for a small corpus and ~2.5 s for 1e5 gems, and every chunk recomputes the similarity
# matrix; below this the pool cannot win back its start-up. (The shipped set: 566 gems x 100
# questions is 5.7e4 cells a point, so its sweeps always stay in-process.)
MIN_PARALLEL_CELLS = 500_000_000
CHUNKS_PER_WORKER = 2  # chunks per worker: progress/cancel granularity vs one matrix product per chunk
CONNECT_TIMEOUT_S = 10.0  # seconds to reach a Dask scheduler before giving up

Point = tuple[str, str, LatticeParams]



_MAIN_LOCK = threading.Lock()


@contextmanager
def plain_main():
    """While worker processes start: ``__main__`` as a bare module.

    A forkserver or spawn child re-runs the parent's ``__main__`` *script* (not a module run by
    name, like ``python -m pytest``). Inside Streamlit's script runner and AppTest, ``__main__``
    can be a page script (app.py): a worker would start the app. The parent's own module is put
    back at once; only process start-up sees the bare one.
    """
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not getattr(main, "__file__", None):
        yield
        return
    with _MAIN_LOCK:
        bare = types.ModuleType("__main__")
        sys.modules["__main__"] = bare
        try:
            yield
        finally:
            if sys.modules.get("__main__") is bare:
                sys.modules["__main__"] = main

@dataclass(frozen=True)
class _Payload:
    """What every point needs and no point changes; sent once per worker."""

    corpus: EvalCorpus
    questions: QuestionSet
    query_embeddings: np.ndarray  # (Q, d) float32
    ks: tuple[int, ...]
    seed: int


def resolve_workers(workers: int | None = None) -> int:
    """Worker count: ``workers``, else ``LATTICE_EVAL_WORKERS``, else ``os.cpu_count()``."""
    source = "workers"
    if workers is None:
        text = os.environ.get(WORKERS_ENV, "").strip()
        if not text:
            return max(1, os.cpu_count() or 1)
        source, workers = WORKERS_ENV, text
    try:
        n = int(workers)
    except (TypeError, ValueError):
        raise ValidationError(source, f"got {workers!r}; give a whole number of workers >= 1 (1: in-process)") from None
    if n < 1 or str(n) != str(workers).strip():
        raise ValidationError(source, f"got {workers!r}; give a whole number of workers >= 1 (1: in-process)")
    return n


def choose_executor(executor: str | None, points: int, cells: float, workers: int | None = None,
                    scheduler: str | None = None) -> str:
    """``"inline"``, ``"process"`` or ``"dask"`` for a run of ``points`` points and ``cells``
    score cells (points x questions x gems); see the module docstring for the rule."""
    if executor is not None:
        if executor not in EXECUTORS:
            raise ValidationError("executor", f"got {executor!r}; allowed: {', '.join(EXECUTORS)} (or None: choose)")
        if executor == "dask" and not (scheduler or os.environ.get(SCHEDULER_ENV, "").strip()):
            raise ValidationError("executor", f"'dask' needs a scheduler address: set {SCHEDULER_ENV} "
                                              "(e.g. tcp://host:8786) or pass scheduler=")
        return executor
    n = resolve_workers(workers)
    if n == 1 and (workers is not None or os.environ.get(WORKERS_ENV, "").strip()):
        return "inline"  # asked for: workers=1 or LATTICE_EVAL_WORKERS=1
    if scheduler or os.environ.get(SCHEDULER_ENV, "").strip():
        return "dask"  # a named cluster is used whatever the size (and is checked, not silently ignored)
    if n == 1 or points < 2 or cells < MIN_PARALLEL_CELLS:
        return "inline"  # one CPU, or too little work to win back a pool's start-up
    return "process"


def chunked(points: Sequence[Point], n_chunks: int) -> list[list[int]]:
    """Indices of ``points`` in ``n_chunks`` contiguous, near-equal chunks (none empty)."""
    n_chunks = max(1, min(len(points), n_chunks))
    return [c.tolist() for c in np.array_split(np.arange(len(points)), n_chunks) if c.size]


class _ShippedEmbedder:
    """Stands in for the corpus's embedder on a worker: the questions' vectors are sent, so a
    worker never embeds (an embedder may hold a model, a lock or a GPU handle)."""

    def __init__(self, embedder) -> None:
        self.name = getattr(embedder, "name", type(embedder).__name__)
        self.dim = getattr(embedder, "dim", None)

    def __getattr__(self, attr: str):  # only called for attributes it lacks
        if attr.startswith("_"):
            raise AttributeError(attr)  # pickling's look-ups
        raise LatticeError(f"embedder {self.__dict__.get('name')!r} is not sent to evaluation workers "
                           f"({attr} asked for); "
                           "the questions' embeddings are computed once, before the points are sent")


def _shippable(corpus: EvalCorpus) -> EvalCorpus:
    """A shallow copy without per-instance overrides (``corpus.embed = ...``: the questions'
    vectors travel instead), its embedder or caches, so that it pickles and stays small."""
    out = copy.copy(corpus)
    state = vars(out)
    state.pop("embed", None)
    state["embedder"] = _ShippedEmbedder(corpus.embedder)
    state["_scopes"] = {}
    state["_event"] = None
    return out


def _preflight(payload: _Payload, points: Sequence[Point]) -> None:
    """The checks :func:`evaluate` makes before any work, made here so bad input fails in this
    process with its own message, before anything is sent."""
    corpus, questions = payload.corpus, payload.questions
    if not payload.ks or payload.ks[0] < 1:
        raise ValidationError("k", f"got {list(payload.ks)}; each k must be a whole number >= 1")
    checked_evidence(corpus, questions)
    for name in {name for _, name, _ in points}:  # names only: a BM25 index is built where it is used
        if name not in RANKERS:
            raise ValidationError("ranker", f"got {name!r}; allowed: {', '.join(RANKERS)}")
    expected = (len(questions), corpus.embeddings.shape[1])
    if payload.query_embeddings.shape != expected:
        raise ValidationError("query_embeddings", f"need shape {expected}, got {payload.query_embeddings.shape}")


def _evaluate_chunk(payload: _Payload, points: Sequence[Point]) -> list[PointResult] | tuple[str, str, str]:
    """One chunk on a worker; a user error comes back as ``(type, field, message)`` (the
    project's errors do not unpickle), anything else propagates."""
    try:
        return evaluate(payload.corpus, payload.questions, points, ks=payload.ks, seed=payload.seed, explain=False,
                        query_embeddings=payload.query_embeddings)
    except LatticeError as exc:
        return (type(exc).__name__, getattr(exc, "field", ""), str(exc))


_WORKER_PAYLOAD: _Payload | None = None  # a pool worker's copy, set once by its initializer


def _init_worker(payload: _Payload) -> None:
    global _WORKER_PAYLOAD
    _WORKER_PAYLOAD = payload


def _pool_chunk(points: Sequence[Point]):
    return _evaluate_chunk(_WORKER_PAYLOAD, points)


def _raise_worker_error(err: tuple[str, str, str]) -> None:
    kind, field, message = err
    if kind == "ValidationError" and field and message.startswith(f"{field}: "):
        raise ValidationError(field, message[len(field) + 2:])
    raise LatticeError(f"{message} ({kind} on a worker)")


def _died(exc: BaseException) -> LatticeError:
    return LatticeError(f"an evaluation worker process died ({exc}); if it ran out of memory, set {WORKERS_ENV} "
                        "lower (1: in-process)")


class PointRunner:
    """Evaluates batches of points on one executor, kept for the runner's life (the optimiser's
    batches share one pool or one Dask client, so the payload is sent once per search).

    Use as a context manager; :meth:`close` shuts the pool down (no worker left behind) or
    disconnects from the cluster.
    """

    def __init__(self, corpus: EvalCorpus, questions: QuestionSet, *, ks: Sequence[int] = (5, 10), seed: int = 0,
                 query_embeddings: np.ndarray | None = None, executor: str | None = None,
                 workers: int | None = None, scheduler: str | None = None, points_per_run: int = 1) -> None:
        self.corpus, self.questions, self.seed = corpus, questions, int(seed)
        self.ks = tuple(sorted({int(k) for k in ks}))
        cells = float(points_per_run) * len(questions) * len(corpus)
        self.kind = choose_executor(executor, points_per_run, cells, workers, scheduler)
        self.workers = resolve_workers(workers) if self.kind == "process" else 1
        self.scheduler = (scheduler or os.environ.get(SCHEDULER_ENV, "")).strip()
        self._query_embeddings = query_embeddings
        self._payload: _Payload | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._client = None
        self._remote = None  # the scattered payload (a Dask future)

    # ------------------------------------------------------------------ set-up
    def _payload_now(self) -> _Payload:
        if self._payload is None:
            q = self._query_embeddings
            if q is None:
                q = self.corpus.embed([x.question for x in self.questions])
            self._payload = _Payload(_shippable(self.corpus), self.questions, np.asarray(q, dtype=np.float32),
                                     self.ks, self.seed)
        return self._payload

    def _connect(self):
        if self._client is None:
            try:
                from dask.distributed import Client
            except ImportError:  # pragma: no cover - dask[distributed] is in requirements.txt
                raise LatticeError(f"{SCHEDULER_ENV} is set but dask.distributed is not installed; "
                                   "pip install 'dask[distributed]' or unset it to run locally") from None
            try:
                self._client = Client(self.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
            except Exception as exc:  # noqa: BLE001 - refused, timed out, not a scheduler: all "unreachable"
                raise LatticeError(f"cannot reach the Dask scheduler {self.scheduler!r} ({SCHEDULER_ENV}) within "
                                   f"{CONNECT_TIMEOUT_S:g} s ({type(exc).__name__}: {exc}); start one (dask "
                                   f"scheduler, then dask worker {self.scheduler}) or unset {SCHEDULER_ENV} to "
                                   "run locally; nothing was run") from None
        return self._client

    def _parallelism(self) -> int:
        if self.kind == "dask":
            return max(1, sum(self._connect().nthreads().values()))
        return self.workers

    def _start(self, payload: _Payload) -> None:
        if self.kind == "process" and self._pool is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                             initializer=_init_worker, initargs=(payload,))
        elif self.kind == "dask" and self._remote is None:
            self._remote = self._connect().scatter(payload, broadcast=True, hash=False)

    # ------------------------------------------------------------------ running
    def run(self, points: Sequence[Point], progress: Callable[[float], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> list[PointResult | None]:
        """Each point's result, in point order. ``progress`` gets the finished fraction per
        finished chunk (in-process: per question block) and may raise Cancelled;
        ``should_stop()`` is polled between chunks. A stopped run returns None for the points
        of unfinished chunks (their work is cancelled; nothing is left running)."""
        points = list(points)
        if not points:
            return []
        payload = self._payload_now()
        _preflight(payload, points)
        if self.kind == "inline":
            if should_stop and should_stop():
                return [None] * len(points)
            return list(evaluate(self.corpus, self.questions, points, ks=self.ks, seed=self.seed, explain=False,
                                 progress=progress, query_embeddings=payload.query_embeddings))
        if should_stop and should_stop():
            return [None] * len(points)
        with plain_main():  # workers start here and at the submits below
            self._start(payload)
        chunks = chunked(points, self._parallelism() * CHUNKS_PER_WORKER)
        futures = {}
        out: list[PointResult | None] = [None] * len(points)
        finished = 0
        try:
            with plain_main():
                for chunk in chunks:
                    part = [points[i] for i in chunk]
                    fut = (self._pool.submit(_pool_chunk, part) if self.kind == "process"
                           else self._client.submit(_evaluate_chunk, self._remote, part, pure=False))
                    futures[fut] = chunk
            pending = set(futures)
            while pending:
                if should_stop and should_stop():
                    self._abandon(pending)
                    return out
                done, pending = self._wait(pending)
                for fut in done:
                    result = self._result(fut)
                    if isinstance(result, tuple):
                        self._abandon(pending)
                        _raise_worker_error(result)
                    for i, r in zip(futures[fut], result):
                        out[i] = r
                    finished += len(futures[fut])
                if done and progress:
                    progress(finished / len(points))
        except BrokenProcessPool as exc:  # a worker died before or while a chunk was submitted
            self._abandon(set(futures) or {None})
            raise _died(exc) from None
        except BaseException:
            self._abandon(set(futures) or {None})
            raise
        return out

    def _result(self, fut):
        """A chunk's result; a worker that died (killed, out of memory) is a LatticeError."""
        try:
            return fut.result()
        except BrokenProcessPool as exc:
            raise _died(exc) from None
        except Exception as exc:
            if type(exc).__name__ == "KilledWorker":  # dask.distributed: the task killed its workers
                raise LatticeError(f"the Dask cluster at {self.scheduler!r} lost the workers running a chunk "
                                   f"({exc}); check their memory, or unset {SCHEDULER_ENV}") from None
            raise

    def _wait(self, pending: set):
        """Wait for at least one chunk, at most 0.5 s (so should_stop is polled twice a second)."""
        if self.kind == "process":
            return wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        deadline = time.monotonic() + 0.5  # Dask futures: poll (distributed.wait needs a default client)
        while True:
            done = {f for f in pending if f.done()}
            if done or time.monotonic() >= deadline:
                return done, pending - done
            time.sleep(0.02)

    def _abandon(self, pending: set) -> None:
        """Cancel unfinished chunks; a process pool is torn down (its running chunks cannot be
        interrupted otherwise), so no worker process outlives a cancelled run."""
        if not pending:
            return
        if self.kind == "dask":
            self._client.cancel([f for f in pending if f is not None])
        elif self._pool is not None:
            self._terminate_pool()

    def _terminate_pool(self) -> None:
        pool, self._pool = self._pool, None
        procs = list(getattr(pool, "_processes", {}).values())  # no public API to stop running tasks (3.11)
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)

    def close(self) -> None:
        """Shut the pool down (waiting for its workers to exit) or disconnect from the cluster."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            client, self._client, self._remote = self._client, None, None
            client.close()

    def __enter__(self) -> "PointRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_points(corpus: EvalCorpus, questions: QuestionSet, points: Sequence[Point], *, ks: Sequence[int] = (5, 10),
               seed: int = 0, query_embeddings: np.ndarray | None = None, executor: str | None = None,
               workers: int | None = None, scheduler: str | None = None,
               progress: Callable[[float], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> list[PointResult]:
    """Evaluate ``points`` on the chosen executor (one runner, closed afterwards); Cancelled if
    ``should_stop()`` ended the run early."""
    with PointRunner(corpus, questions, ks=ks, seed=seed, query_embeddings=query_embeddings, executor=executor,
                     workers=workers, scheduler=scheduler, points_per_run=len(points)) as runner:
        out = runner.run(points, progress=progress, should_stop=should_stop)
    if any(r is None for r in out):
        raise Cancelled(f"the run was stopped after {sum(r is not None for r in out)} of {len(out)} points")
    return out


__all__ = ["SCHEDULER_ENV", "WORKERS_ENV", "EXECUTORS", "MIN_PARALLEL_CELLS", "CHUNKS_PER_WORKER",
           "CONNECT_TIMEOUT_S", "PointRunner", "run_points", "resolve_workers", "choose_executor", "chunked"]
