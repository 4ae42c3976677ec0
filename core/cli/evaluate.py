"""``python -m core eval --lattice NAME --questions FILE``: retrieval quality on a question set.

Prints recall@k, MRR and nDCG@k with bootstrap 95% intervals, overall and per category, for the
lattice's own scoring (``--set`` overrides parameters, as for ``simulate``) and for any of the
baselines (``--ranker``). Read-only: each question is ranked as of its own time on an
in-memory copy; nothing is written.
"""
from __future__ import annotations

import argparse

from core.cli.common import add_json_and_handler, emit, open_store, parse_settings, progress_bar

RANKER_CHOICES = ("lattice", "similarity", "bm25", "hybrid", "langchain", "generative-agents", "memorybank")


def _ks(text: str) -> list[int]:
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k expects whole numbers separated by commas, got {text!r}") from None
    if not ks or ks[0] < 1 or ks[-1] > 1000:
        raise argparse.ArgumentTypeError(f"--k expects values in [1, 1000], got {text!r}")
    return ks


def _rankers(values: list[str] | None) -> list[str]:
    names: list[str] = []
    for value in values or ["lattice"]:
        for name in value.split(","):
            name = name.strip()
            if name == "all":
                names.extend(RANKER_CHOICES)
            elif name:
                if name not in RANKER_CHOICES:
                    from core.errors import ValidationError
                    raise ValidationError("ranker", f"got {name!r}; allowed: {', '.join(RANKER_CHOICES)}, all")
                names.append(name)
    return list(dict.fromkeys(names))


def table_lines(results, ks: list[int]) -> list[str]:
    from core.evaluation import metric_names
    names = metric_names(ks)
    width = max(12, *(len(r.label) for r in results))
    lines = [f"{'ranker':<{width}}  " + "  ".join(f"{m:>22}" for m in names)]
    for r in results:
        lines.append(f"{r.label:<{width}}  " + "  ".join(f"{r.report.overall[m].text():>22}" for m in names))
    return lines


def category_lines(result, ks: list[int]) -> list[str]:
    from core.evaluation import metric_names
    names = metric_names(ks)
    lines = [f"{result.label} by category:"]
    for cat, metrics in result.report.by_category.items():
        n = next(iter(metrics.values())).n
        lines.append(f"  {cat:<16} n={n:<4} " + "  ".join(f"{m} {metrics[m].text()}" for m in names))
    return lines


def cmd_eval(args: argparse.Namespace) -> int:
    from core.engine import apply_settings
    from core.evaluation import corpus_from_store, evaluate, load_questions
    questions = load_questions(args.questions)  # a bad file fails before the store is opened
    rankers = _rankers(args.ranker)
    with open_store() as store:
        corpus = corpus_from_store(store, args.lattice)
    params = apply_settings(corpus.params, parse_settings(args.set)) if args.set else corpus.params
    points = [(name, name, params) for name in rankers]
    bar = progress_bar(args, f"evaluating {len(questions)} questions x {len(points)} rankers")
    results = evaluate(corpus, questions, points, ks=args.k, seed=args.seed,
                       progress=bar.update if bar else None)
    if bar:
        bar.close()
    data = {"lattice": args.lattice, "questions": len(questions), "questions_sha256": questions.sha256,
            "answerable": len(questions) - results[0].report.unanswerable, "seed": args.seed,
            "params": params.to_dict(), "overall": results[0].report.to_dict()["overall"],
            "rankers": {r.label: r.report.to_dict() for r in results}}
    text = [f"{args.lattice}: {len(questions)} questions ({data['answerable']} with evidence), "
            f"ranked as of each question's time; 95% bootstrap intervals", *table_lines(results, args.k)]
    if args.by_category:
        for r in results:
            text += category_lines(r, args.k)
    emit(args, data, text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="measure retrieval quality (recall@k, MRR, nDCG) on a question set",
                       description="Rank each question of FILE as of its own time (nothing is written) and report "
                                   "recall@k, MRR and nDCG@k with bootstrap 95% intervals.")
    p.add_argument("--lattice", required=True, help="lattice name")
    p.add_argument("--questions", required=True, metavar="FILE", help="question set (JSONL; see the README)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a parameter for this evaluation, e.g. --set half_life=14d --set scoring=floor")
    p.add_argument("--ranker", action="append", metavar="NAME",
                   help=f"ranker(s) to compare: {', '.join(RANKER_CHOICES)} or all (default: lattice)")
    p.add_argument("--k", type=_ks, default=[5, 10], help="cut-offs for recall@k, comma-separated (default 5,10)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--by-category", action="store_true", help="also print the metrics per question category")
    add_json_and_handler(p, cmd_eval, "the metrics")
