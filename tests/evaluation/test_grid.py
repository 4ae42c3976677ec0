"""Sweeps on retrieval outcomes: axes parse strictly, every grid point is one evaluated point,
and on a planted timeline the best half-life is the planted one."""
import numpy as np
import pytest

from core.errors import ValidationError
from core.evaluation.grid import parse_axis, sweep_outcomes
from core.evaluation.synthetic import planted_timeline


def test_axes_read_durations_numbers_and_log_scales():
    a = parse_axis("half_life=1h:1w:3:log", "hour")
    assert a.name == "half_life" and a.log and np.allclose(a.values, [1, np.sqrt(168), 168])
    assert parse_axis("half_life=1:2:2", "day").values == (1.0, 2.0)  # bare numbers: lattice units
    assert parse_axis("coherence_floor=0:1:5").values == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert parse_axis("k=1:10:4").values == (1.0, 4.0, 7.0, 10.0)  # whole numbers for an int parameter


@pytest.mark.parametrize("spec, words", [("half_life", "NAME=LOW:HIGH:N"), ("scoring=0:1:3", "cannot be swept"),
                                         ("nope=0:1:3", "cannot be swept"), ("coherence_floor=1:0:3", "LOW < HIGH"),
                                         ("coherence_floor=0:1:1", "2 <= N"), ("half_life=0:1d:3:log", "LOW > 0"),
                                         ("coherence_floor=0:1:x", "whole number"), ("half_life=soon:1d:3", "soon"),
                                         ("coherence_floor=0:1:3:lin", "NAME=LOW:HIGH:N")])
def test_bad_axes_say_the_form(spec, words):
    with pytest.raises(ValidationError, match=words):
        parse_axis(spec)


def test_the_best_point_of_a_half_life_sweep_is_the_planted_one():
    pt = planted_timeline(questions=100, half_life=48.0, seed=6)
    corpus = pt.corpus
    corpus.embed = lambda texts: pt.query_embeddings  # the planted questions come as vectors
    table = sweep_outcomes(corpus, pt.questions, [parse_axis("half_life=3h:1000h:9:log")], ks=(1, 5))
    assert len(table) == 9 and {"half_life", "mrr", "mrr_low", "mrr_high"} <= set(table.columns)
    best = table.loc[table["mrr"].idxmax(), "half_life"]
    assert 48.0 / 2.1 <= best <= 48.0 * 2.1  # the grid's nearest points to 48 h
    assert (table["mrr_low"] <= table["mrr"]).all() and (table["mrr"] <= table["mrr_high"]).all()


def test_grids_are_bounded_and_axes_distinct():
    pt = planted_timeline(questions=10, distractors=50, seed=7)
    axis = parse_axis("coherence_floor=0:1:30")
    with pytest.raises(ValidationError, match="each parameter may be swept once"):
        sweep_outcomes(pt.corpus, pt.questions, [axis, axis])
    with pytest.raises(ValidationError, match="over the limit"):
        sweep_outcomes(pt.corpus, pt.questions, [axis, parse_axis("alpha=0:2:30")])
