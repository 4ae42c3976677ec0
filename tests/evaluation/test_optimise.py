"""On a timeline with a planted forgetting curve, the metric peaks at the planted half-life and the
optimiser finds it; the search is seeded, stoppable and refuses bad spaces."""
import numpy as np
import pytest

from core.engine import Cancelled
from core.errors import ValidationError
from core.evaluation import evaluate
from core.evaluation.optimise import optimise
from core.evaluation.synthetic import planted_timeline


@pytest.mark.parametrize("planted", [24.0, 240.0])
def test_the_optimiser_recovers_the_planted_half_life(planted):
    pt = planted_timeline(questions=120, half_life=planted, seed=int(planted))
    result = optimise(pt.corpus, pt.questions, {"half_life": (1.0, 5000.0, True)}, metric="mrr", trials=32, seed=2,
                      query_embeddings=pt.query_embeddings)
    assert planted / 1.6 <= result.best_settings["half_life"] <= planted * 1.6
    assert result.best_params.half_life() == pytest.approx(result.best_settings["half_life"])
    assert result.best.low <= result.best.value <= result.best.high and len(result.trials) == 32
    again = optimise(pt.corpus, pt.questions, {"half_life": (1.0, 5000.0, True)}, metric="mrr", trials=32, seed=2,
                     query_embeddings=pt.query_embeddings)
    assert again.best_settings == result.best_settings  # seeded: the same search


def test_a_sweep_over_the_half_life_peaks_at_the_planted_one():
    pt = planted_timeline(questions=120, half_life=72.0, seed=3)
    grid = [8.0, 24.0, 72.0, 216.0, 648.0]
    points = [(str(h), "lattice", pt.corpus.params.replace(lambda_=float(np.log(2) / h))) for h in grid]
    out = evaluate(pt.corpus, pt.questions, points, ks=(1, 5), query_embeddings=pt.query_embeddings, explain=False)
    mrr = [r.report.overall["mrr"].value for r in out]
    assert int(np.argmax(mrr)) == grid.index(72.0)
    assert mrr[2] - max(mrr[0], mrr[4]) > 0.15  # clearly worse when far off


def test_the_search_stops_on_request_and_refuses_bad_spaces():
    pt = planted_timeline(questions=30, distractors=200, seed=4)
    with pytest.raises(Cancelled):
        optimise(pt.corpus, pt.questions, {"half_life": (1.0, 100.0, True)}, should_stop=lambda: True,
                 query_embeddings=pt.query_embeddings)
    calls = []
    partial = optimise(pt.corpus, pt.questions, {"half_life": (1.0, 100.0, True)}, trials=40, batch=4,
                       should_stop=lambda: len(calls) > 0, progress=calls.append, query_embeddings=pt.query_embeddings)
    assert len(partial.trials) == 4 and calls == [0.1]
    for space, field in (({}, "space"), ({"nope": (0, 1, False)}, "nope"), ({"half_life": (0.0, 10.0, True)}, "half_life"),
                         ({"k": (5, 1, False)}, "k")):
        with pytest.raises(ValidationError) as err:
            optimise(pt.corpus, pt.questions, space, query_embeddings=pt.query_embeddings)
        assert err.value.field == field
    with pytest.raises(ValidationError, match="metric"):
        optimise(pt.corpus, pt.questions, {"half_life": (1.0, 10.0, True)}, metric="accuracy")
