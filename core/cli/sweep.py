"""``python -m core sweep --lattice NAME --over half_life=1h:1y:12:log [--questions FILE]``.

With ``--questions``: retrieval outcomes (recall@k, MRR, nDCG@k with 95% intervals) of every grid
point on that question set, each question ranked as of its own time; without: the lattice
statistics at ``--horizon`` (mean coherence, R, mean uncertainty, coherent fraction) of a
simulated copy. One or two axes; the best point is marked. Read-only.
"""
from __future__ import annotations

import argparse
import math

from core.cli.common import add_json_and_handler, emit, open_store, parse_settings, progress_bar

RETRIEVAL_METRICS = ("recall@5", "recall@10", "mrr", "ndcg@10")
LATTICE_METRICS = ("mean_coherence", "R", "mean_uncertainty", "coherent_fraction")


def _cell(name: str, value: float, time_unit: str) -> str:
    if name == "half_life":
        from core.engine import humanize_duration
        return humanize_duration(value, time_unit)
    return f"{value:.4g}"


def lines(table, axes: list[str], metric: str, time_unit: str, with_interval: bool) -> list[str]:
    best = int(table[metric].to_numpy().argmax())
    out = ["  ".join(f"{a:>14}" for a in axes) + f"  {metric:>24}"]
    for i, row in table.iterrows():
        value = (f"{row[metric]:.3f} [{row[f'{metric}_low']:.3f}, {row[f'{metric}_high']:.3f}]" if with_interval
                 else f"{row[metric]:.4f}")
        out.append("  ".join(f"{_cell(a, row[a], time_unit):>14}" for a in axes) + f"  {value:>24}"
                   + ("  * best" if i == best else ""))
    return out


def cmd_sweep(args: argparse.Namespace) -> int:
    from core.engine import apply_settings
    from core.evaluation import corpus_from_store, load_questions, parse_axis, sweep_outcomes
    questions = load_questions(args.questions) if args.questions else None
    metrics = RETRIEVAL_METRICS if questions is not None else LATTICE_METRICS
    metric = args.metric or metrics[1 if questions is not None else 0]
    if metric not in metrics:
        from core.errors import ValidationError
        raise ValidationError("metric", f"got {metric!r}; with{'' if questions else 'out'} --questions: "
                                        f"{', '.join(metrics)}")
    with open_store() as store:
        corpus = corpus_from_store(store, args.lattice) if questions is not None else None
        loaded = store.load_stored(args.lattice) if questions is None else None
    params = (corpus.params if corpus is not None else loaded.info.params)
    if args.set:
        params = apply_settings(params, parse_settings(args.set))
    axes = [parse_axis(spec, params.time_unit) for spec in args.over]
    bar = progress_bar(args, "sweeping")
    if questions is not None:
        table = sweep_outcomes(corpus, questions, axes, params, progress=bar.update if bar else None)
    else:
        table = _lattice_sweep(loaded.lattice, params, axes, args.horizon, bar)
    if bar:
        bar.close()
    names = [a.name for a in axes]
    best = table.iloc[int(table[metric].to_numpy().argmax())]
    data = {"lattice": args.lattice, "metric": metric, "axes": names,
            "best": {**{n: float(best[n]) for n in names}, metric: float(best[metric])},
            "points": table.to_dict(orient="records")}
    text = [f"{args.lattice}: {metric} over {' x '.join(names)} ({len(table)} points"
            + (f", {len(questions)} questions, 95% intervals)" if questions is not None
               else f", lattice statistics at +{args.horizon:g} {params.time_unit}s)"),
            *lines(table, names, metric, params.time_unit, questions is not None)]
    emit(args, data, text)
    return 0


def _lattice_sweep(lattice, params, axes, horizon: float, bar):
    """The engine's sweep, half_life given as lambda_ (ln 2 / t½); columns as the retrieval table."""
    from core.engine import lambda_for_half_life, sweep
    grid, rename = {}, {}
    for axis in axes:
        if axis.name == "half_life":
            grid["lambda_"] = [lambda_for_half_life(v) for v in axis.values]
            rename["lambda_"] = "half_life"
        else:
            grid[axis.name] = list(axis.values)
    table = sweep(lattice, params, grid, horizon, progress=bar.update if bar else None).rename(columns=rename)
    if "half_life" in table:
        table["half_life"] = [math.inf if lam == 0 else math.log(2) / lam for lam in table["half_life"]]
    return table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="sweep one or two parameters: retrieval outcomes on a question set, or "
                                     "lattice statistics (read-only)",
                       description="Evaluate a grid of parameter values. With --questions: recall@k, MRR and nDCG "
                                   "with 95% intervals (each question ranked as of its own time); without: mean "
                                   "coherence, R, mean uncertainty, coherent fraction of a simulated copy.")
    p.add_argument("--lattice", required=True, help="lattice name")
    p.add_argument("--over", action="append", required=True, metavar="NAME=LOW:HIGH:N[:log]",
                   help="an axis, e.g. half_life=1h:1y:12:log or coherence_floor=0:1:5 (give one or two)")
    p.add_argument("--questions", metavar="FILE", help="question set (JSONL): sweep retrieval outcomes")
    p.add_argument("--metric", help="the metric that picks the best point (default recall@10, or mean_coherence)")
    p.add_argument("--horizon", type=float, default=24.0,
                   help="without --questions: simulate this far, in lattice time units (default 24)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="a base parameter, e.g. --set scoring=floor")
    add_json_and_handler(p, cmd_sweep, "every point")
