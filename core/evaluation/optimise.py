"""Search the parameters for the best retrieval metric (Optuna's TPE sampler, seeded).

Trials are asked in batches and each batch is evaluated as one multi-point evaluation, so
the similarity matrix is computed once per batch, not once per trial (in-process; a large
batch is spread over a local process pool or a Dask cluster in chunks of trials, one pool or
client for the whole search, see :mod:`core.evaluation.parallel`). A search space names
parameters (``half_life`` in lattice time units, or any numeric parameter of
``LatticeParams``) with ``(low, high, log)``; categorical choices are tuples of strings. The
result carries every trial, and the best point's metric with its bootstrap interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from core.engine import PARAM_SPECS, Cancelled, LatticeParams, apply_settings
from core.errors import ValidationError
from core.evaluation.corpus import EvalCorpus
from core.evaluation.evaluate import PointResult
from core.evaluation.metrics import Estimate, metric_names
from core.evaluation.parallel import PointRunner
from core.evaluation.questions import QuestionSet

MAX_TRIALS = 2000


@dataclass
class OptimiseResult:
    metric: str
    best_params: LatticeParams
    best_settings: dict[str, Any]  # the searched names and their best values
    best: Estimate
    trials: pd.DataFrame  # one row per trial: its settings and the metric's value
    seed: int


def _check_space(space: Mapping[str, Any]) -> None:
    if not space:
        raise ValidationError("space", "name at least one parameter to search (for example half_life)")
    for name, spec in space.items():
        if name != "half_life" and name not in PARAM_SPECS:
            raise ValidationError(name, f"unknown parameter; searchable: half_life, {', '.join(PARAM_SPECS)}")
        if isinstance(spec, tuple) and spec and all(isinstance(x, str) for x in spec):
            continue
        try:
            low, high, log = spec
        except (TypeError, ValueError):
            raise ValidationError(name, "give (low, high, log) or a tuple of choices") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high) or (log and low <= 0):
            raise ValidationError(name, f"got range ({low}, {high}); need low < high (and low > 0 on a log scale)")


def optimise(corpus: EvalCorpus, questions: QuestionSet, space: Mapping[str, Any], metric: str = "mrr",
             trials: int = 40, batch: int = 8, seed: int = 0, base: LatticeParams | None = None,
             ks: Sequence[int] = (5, 10), progress: Callable[[float], None] | None = None,
             should_stop: Callable[[], bool] | None = None,
             query_embeddings: np.ndarray | None = None, *, executor: str | None = None,
             workers: int | None = None, scheduler: str | None = None) -> OptimiseResult:
    """Maximise ``metric`` (one of :func:`metric_names`) over ``space`` in ``trials`` trials.

    ``should_stop()`` is polled between batches and between a batch's chunks: the search ends
    early with the best of the finished trials (Cancelled if none finished). Deterministic for
    a given seed, whatever the executor (``executor``/``workers``/``scheduler`` as in
    :func:`core.evaluation.grid.sweep_outcomes`; the trials and metrics are the same).
    """
    import optuna  # imported when a search is run (start-up time)
    names = metric_names(ks)
    if metric not in names:
        raise ValidationError("metric", f"got {metric!r}; allowed: {', '.join(names)}")
    if not (1 <= trials <= MAX_TRIALS):
        raise ValidationError("trials", f"got {trials}; must be in [1, {MAX_TRIALS}]")
    _check_space(space)
    base = base or corpus.params
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    rows: list[dict] = []
    results: dict[int, PointResult] = {}
    done = 0
    with PointRunner(corpus, questions, ks=ks, seed=seed, query_embeddings=query_embeddings, executor=executor,
                     workers=workers, scheduler=scheduler, points_per_run=min(batch, trials)) as runner:
        while done < trials:
            if should_stop and should_stop():
                break
            asked = [study.ask() for _ in range(min(batch, trials - done))]
            points = []
            for trial in asked:
                settings = _suggest(trial, space)
                points.append((f"trial {trial.number}", "lattice", apply_settings(base, settings)))
                rows.append({"trial": trial.number, **settings})
            start = done  # parallel: progress per finished chunk; in-process: per batch, as before
            chunk_progress = ((lambda f, n=len(asked): progress((start + f * n) / trials))
                              if progress and runner.kind != "inline" else None)
            out = runner.run(points, should_stop=should_stop, progress=chunk_progress)
            for trial, result in zip(asked, out):
                if result is None:  # stopped before this trial's chunk finished
                    continue
                value = result.report.overall[metric].value
                study.tell(trial, value if math.isfinite(value) else 0.0)
                rows[trial.number][metric] = value
                results[trial.number] = result
            done += len(asked)
            if any(r is None for r in out):
                rows = [r for r in rows if r["trial"] in results]
                break
            if progress:
                progress(done / trials)
    if not results:
        raise Cancelled("the search was stopped before any trial finished")
    best_trial = max(results, key=lambda k: (results[k].report.overall[metric].value, -k))
    best = results[best_trial]
    best_row = next(r for r in rows if r["trial"] == best_trial)
    settings = {k: v for k, v in best_row.items() if k not in ("trial", metric)}
    return OptimiseResult(metric, best.params, settings, best.report.overall[metric], pd.DataFrame(rows), seed)


def _suggest(trial, space: Mapping[str, Any]) -> dict[str, Any]:
    """One trial's settings from the search space (categorical, int or float; log as given)."""
    settings: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, tuple) and all(isinstance(x, str) for x in spec):
            settings[name] = trial.suggest_categorical(name, list(spec))
        else:
            low, high, log = spec
            if name in PARAM_SPECS and PARAM_SPECS[name].kind == "int":
                settings[name] = trial.suggest_int(name, int(low), int(high), log=bool(log))
            else:
                settings[name] = trial.suggest_float(name, float(low), float(high), log=bool(log))
    return settings
