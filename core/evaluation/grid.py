"""Sweeps on retrieval outcomes: a grid of one or two parameters, each point's metrics with intervals.

An axis is ``NAME=LOW:HIGH:N`` with an optional ``:log`` (``half_life=1h:1y:12:log``,
``coherence_floor=0:1:5``); ``half_life`` takes durations (:func:`core.engine.parse_duration`,
in the lattice's time unit), any other numeric parameter numbers. In-process, every point is
evaluated in one call of :func:`core.evaluation.evaluate`, so the similarity matrix is computed
once; larger grids go to a local process pool or a Dask cluster in chunks of points
(:mod:`core.evaluation.parallel`), with the same table whatever ran them.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from core.engine import PARAM_SPECS, LatticeParams, apply_settings, parse_duration
from core.errors import ValidationError
from core.evaluation.corpus import EvalCorpus
from core.evaluation.metrics import metric_names
from core.evaluation.parallel import run_points
from core.evaluation.questions import QuestionSet

MAX_AXES = 2
MAX_POINTS = 400


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[float, ...]
    log: bool = False


def parse_axis(spec: str, time_unit: str = "hour") -> Axis:
    """``NAME=LOW:HIGH:N[:log]`` -> :class:`Axis` (ValidationError saying the form otherwise)."""
    form = "NAME=LOW:HIGH:N[:log], e.g. half_life=1h:1y:12:log or coherence_floor=0:1:5"
    name, sep, rest = str(spec).partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValidationError("over", f"got {spec!r}; give {form}")
    if name != "half_life" and (name not in PARAM_SPECS or PARAM_SPECS[name].kind == "choice"):
        numeric = [n for n, s in PARAM_SPECS.items() if s.kind != "choice"]
        raise ValidationError("over", f"{name!r} cannot be swept; sweep half_life or one of {', '.join(numeric)}")
    parts = rest.split(":")
    log = len(parts) == 4 and parts[3].strip().lower() == "log"
    if len(parts) not in (3, 4) or (len(parts) == 4 and not log):
        raise ValidationError("over", f"got {spec!r}; give {form}")
    read = (lambda x: parse_duration(x, time_unit, "over")) if name == "half_life" else _number
    low, high = read(parts[0]), read(parts[1])
    try:
        n = int(parts[2])
    except ValueError:
        raise ValidationError("over", f"got {spec!r}: N must be a whole number of points") from None
    if not (2 <= n <= MAX_POINTS) or not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise ValidationError("over", f"got {spec!r}: need LOW < HIGH, both finite, and 2 <= N <= {MAX_POINTS}")
    if log and low <= 0:
        raise ValidationError("over", f"got {spec!r}: a log axis needs LOW > 0")
    values = np.geomspace(low, high, n) if log else np.linspace(low, high, n)
    if name in PARAM_SPECS and PARAM_SPECS[name].kind == "int":
        values = np.unique(np.round(values)).astype(int)
    return Axis(name, tuple(float(v) for v in values), log)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValidationError("over", f"{text!r} is not a number") from None


def sweep_outcomes(corpus: EvalCorpus, questions: QuestionSet, axes: Sequence[Axis], base: LatticeParams | None = None,
                   ks: Sequence[int] = (5, 10), seed: int = 0,
                   progress: Callable[[float], None] | None = None, *,
                   should_stop: Callable[[], bool] | None = None, executor: str | None = None,
                   workers: int | None = None, scheduler: str | None = None,
                   query_embeddings: np.ndarray | None = None) -> pd.DataFrame:
    """One row per grid point: the axes' values, each metric and its 95% interval (``<m>_low``,
    ``<m>_high``). Points whose parameters are invalid are refused before anything runs.

    ``executor`` (``"inline"``, ``"process"``, ``"dask"``; None: chosen by size and
    ``LATTICE_DASK_SCHEDULER``), ``workers`` (None: ``LATTICE_EVAL_WORKERS`` or the CPU count;
    1: in-process) and ``scheduler`` (a Dask address) say where the points run; the table is
    the same bit for bit. ``progress`` gets the done fraction (per finished chunk when
    parallel); ``should_stop()`` is polled between chunks and stops the sweep with Cancelled.
    ``query_embeddings`` (Q, d): the questions' vectors when given rather than embedded.
    """
    if not 1 <= len(axes) <= MAX_AXES:
        raise ValidationError("over", f"sweep one or two parameters, got {len(axes)}")
    if len({a.name for a in axes}) != len(axes):
        raise ValidationError("over", "each parameter may be swept once")
    combos = list(itertools.product(*(a.values for a in axes)))
    if len(combos) > MAX_POINTS:
        raise ValidationError("over", f"{len(combos)} points is over the limit of {MAX_POINTS}; use fewer values")
    base = base or corpus.params
    points = [(f"point {i}", "lattice", apply_settings(base, dict(zip((a.name for a in axes), combo))))
              for i, combo in enumerate(combos)]
    results = run_points(corpus, questions, points, ks=ks, seed=seed, query_embeddings=query_embeddings,
                         executor=executor, workers=workers, scheduler=scheduler, progress=progress,
                         should_stop=should_stop)
    rows = []
    for combo, result in zip(combos, results):
        row = dict(zip((a.name for a in axes), combo))
        for m in metric_names(ks):
            est = result.report.overall[m]
            row[m], row[f"{m}_low"], row[f"{m}_high"] = est.value, est.low, est.high
        rows.append(row)
    return pd.DataFrame(rows)
