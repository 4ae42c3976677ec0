"""Evaluation bench: what a parameter set does to retrieval quality on real, dated questions.

Question sets (``questions``), metrics with bootstrap intervals (``metrics``), the corpus a
lattice offers at a question's time (``corpus``), the rankers compared (``rankers``: the
lattice's scoring rules and the published baselines), the evaluation itself (``evaluate``),
the parameter search (``optimise``, Optuna), where the points run (``parallel``: in-process, a
process pool or a Dask cluster) and planted timelines to check it (``synthetic``).
"""
from core.evaluation.corpus import EvalCorpus, corpus_from_store
from core.evaluation.evaluate import PointResult, evaluate, ranks_in
from core.evaluation.metrics import DEFAULT_KS, Estimate, MetricReport, bootstrap, metric_names, question_metrics
from core.evaluation.questions import EvalQuestion, QuestionSet, load_questions, question_rows, question_set
from core.evaluation.rankers import BASELINES, RANKERS, make_ranker
from core.evaluation.optimise import MAX_TRIALS, OptimiseResult, optimise
from core.evaluation.grid import MAX_POINTS as MAX_GRID_POINTS, Axis, parse_axis, sweep_outcomes
from core.evaluation.parallel import PointRunner, run_points
from core.evaluation.synthetic import PlantedTimeline, planted_timeline

__all__ = ["EvalCorpus", "corpus_from_store", "PointResult", "evaluate", "ranks_in", "DEFAULT_KS", "Estimate",
           "MetricReport", "bootstrap", "metric_names", "question_metrics", "EvalQuestion", "QuestionSet",
           "load_questions", "question_rows", "question_set", "BASELINES", "RANKERS", "make_ranker",
           "MAX_TRIALS", "OptimiseResult", "optimise", "MAX_GRID_POINTS", "Axis", "parse_axis", "sweep_outcomes",
           "PointRunner", "run_points", "PlantedTimeline", "planted_timeline"]
