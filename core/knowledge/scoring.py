"""The scoring rules of a resonance ranking (lattice parameter ``scoring``), and why a
ranking came back empty.

With s_i = max(0, cos_sim(q, g_i)) (similarity, in [0, 1]) and c_i**alpha (the
coherence factor, in [0, 1]), a gem's score before the interference re-rank is:

``product`` (the seed, default; "hard forgetting")::

    r_i = s_i * c_i**alpha                     min_score applies to r_i

``floor`` (age reorders, never erases)::

    r_i = s_i * (phi + (1 - phi) * c_i**alpha)  phi = coherence_floor; min_score applies to s_i

``weighted`` (the Generative Agents form)::

    r_i = (w_rel * rel_i + w_rec * rec_i + w_imp * imp_i) / (w_rel + w_rec + w_imp)
    rel_i = (s_i - min_j s_j) / (max_j s_j - min_j s_j)   over the lattice's gems, this query
    rec_i = c_i**alpha                                    (coherence decays since last use)
    imp_i = (E_i - min_j E_j) / (max_j E_j - min_j E_j)   energy over the lattice
                                                          (each 1 when all gems are equal)

so r_i is in [0, 1]; min_score applies to s_i. Under floor and weighted scoring the most
similar gem (when s >= min_score) is never dropped for age alone: if the k best scores
leave it out, it takes the last slot (``RankedGem.kept_as_most_similar``).

Everything is dimensionless. :func:`explain_empty` says, in words a user can act on, why
a ranking has no gem (empty lattice, no similar gem, or decay under product scoring).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.engine.params import LatticeParams
from core.errors import ValidationError

RULE_TERMS: dict[str, tuple[str, ...]] = {
    "product": (),
    "floor": ("floor", "kept_as_most_similar"),
    "weighted": ("relevance", "recency", "importance", "kept_as_most_similar"),
}
"""The RankedGem fields each rule adds to the seed's terms (None / absent under the others)."""

RULE_FORMULAS: dict[str, str] = {
    "product": "score = s·c^α (+ interference); the minimum score applies to s·c^α",
    "floor": "score = s·(φ + (1 − φ)·c^α) (+ interference); the minimum score applies to the similarity s",
    "weighted": "score = (w_rel·relevance + w_rec·recency + w_imp·importance) / (w_rel + w_rec + w_imp) "
                "(+ interference); the minimum score applies to the similarity s",
}
"""One line per rule, for captions and help texts."""

DEMO_LATTICE = "demo"  # the shipped demo's name (core.service.demo.DEMO_NAME; knowledge cannot import service)


@dataclass(frozen=True)
class ScoringRule:
    """One lattice's scoring rule with its per-gem constants (built once per ranking call).

    ``factor`` is c**alpha per gem; ``mult`` the per-gem multiplier of s under product
    (``factor``) and floor (``phi + (1 - phi) factor``), None under weighted; ``importance``
    the min-max normalised energy (weighted only). Arrays are float64, shape (N,).
    """

    scoring: str
    factor: np.ndarray
    mult: np.ndarray | None
    importance: np.ndarray | None
    phi: float
    w_relevance: float
    w_recency: float
    w_importance: float

    @property
    def on_similarity(self) -> bool:
        """True when min_score applies to the similarity (floor, weighted), not to the score."""
        return self.scoring != "product"

    @property
    def weight_sum(self) -> float:
        return self.w_relevance + self.w_recency + self.w_importance

    def relevance(self, sim: np.ndarray, s_min: float, s_max: float) -> np.ndarray:
        """``(s - s_min) / (s_max - s_min)``, 1 where all similarities are equal."""
        span = s_max - s_min
        if not span > 0:
            return np.ones_like(sim)
        return np.clip((sim - s_min) / span, 0.0, 1.0)

    def scores(self, sim: np.ndarray, idx: np.ndarray | slice, s_min: float = 0.0, s_max: float = 0.0) -> np.ndarray:
        """The rule's score (before interference) of the gems ``idx`` with similarities ``sim``.

        ``s_min``/``s_max``: the query's lowest and highest similarity over all gems
        (weighted scoring only). float64; the same arithmetic in :func:`resonance` and
        :func:`batch_resonance`, so equal similarities give equal scores bit for bit.
        """
        if self.mult is not None:
            return sim * self.mult[idx]
        rel = self.relevance(sim, s_min, s_max)
        return (self.w_relevance * rel + self.w_recency * self.factor[idx]
                + self.w_importance * self.importance[idx]) / self.weight_sum


def scoring_rule(coherence: np.ndarray, energy: np.ndarray, params: LatticeParams) -> ScoringRule:
    """The :class:`ScoringRule` of ``params`` for gems of ``coherence`` and ``energy``.

    Raises ValidationError when weighted scoring has all three weights 0 (no score to
    rank by): nothing is computed.
    """
    factor = np.power(np.asarray(coherence, dtype=np.float64), params.alpha)
    phi = float(params.coherence_floor)
    if params.scoring == "product":
        return ScoringRule("product", factor, factor, None, phi, params.w_relevance, params.w_recency,
                           params.w_importance)
    if params.scoring == "floor":
        return ScoringRule("floor", factor, phi + (1.0 - phi) * factor, None, phi, params.w_relevance,
                           params.w_recency, params.w_importance)
    if params.w_relevance + params.w_recency + params.w_importance <= 0:
        raise ValidationError("w_relevance, w_recency, w_importance",
                              "weighted scoring needs at least one weight above 0 (all three are 0); raise one "
                              "of the relevance, recency or importance weights, or choose another scoring rule")
    e = np.asarray(energy, dtype=np.float64)
    if e.size and e.max() > e.min():
        importance = (e - e.min()) / (e.max() - e.min())
    else:
        importance = np.ones_like(e)
    return ScoringRule("weighted", factor, None, importance, phi, params.w_relevance, params.w_recency,
                       params.w_importance)


def explain_empty(ranking: Any, params: LatticeParams, lattice: str | None = None) -> str:
    """Why ``ranking`` has no gem, and what to do, in one or two sentences ("" when it has gems).

    ``ranking``: a :class:`core.knowledge.resonance.Ranking` (not imported here: resonance
    imports this module).

    The causes, in the order they are checked: the lattice has no gems; no gem is similar
    enough (best similarity < min_score); under product scoring, gems are similar enough
    but their coherence factor (decay) keeps every resonance s·c^α below min_score.
    ``lattice``: the lattice's name (the demo gets "reset the demo" as a remedy).
    """
    if len(ranking):
        return ""
    if ranking.n_gems == 0:
        return ("The lattice has no gems yet, so nothing can resonate: add or import gems "
                "(Lattice page, or python -m core import FILE), then ask again.")
    lo = params.min_score
    if ranking.n_similar == 0 or ranking.best_similarity < lo:
        return (f"No gem is similar enough to the question (best similarity {ranking.best_similarity:.3f} "
                f"< minimum {lo:g}): add gems on this topic, rephrase, or lower the minimum score.")
    one = ranking.n_similar == 1
    gems = f"{ranking.n_similar} gem{'' if one else 's'} match{'es' if one else ''}"
    if params.scoring == "product":
        best = f"best resonance {ranking.best_resonance:.3g} < {lo:g}"
        if params.lambda_ > 0:
            cause = "decay has brought their coherence below what the minimum score needs"
            remedies = [f"raise the half-life (now {params.half_life_text()})", "switch the scoring rule to floor"]
        else:
            cause = f"their coherence is too low for the minimum score (coherence exponent α = {params.alpha:g})"
            remedies = ["observe those gems to re-cohere them", "lower α", "switch the scoring rule to floor"]
        if lattice == DEMO_LATTICE:
            remedies.append("reset the demo (python -m core demo --reset)")
        advice = ", ".join(remedies[:-1]) + ", or " + remedies[-1]
        return f"{gems} the question (similarity >= {lo:g}), but {cause} ({best}); {advice}."
    # floor and weighted keep every gem with s >= min_score, so this only follows k = 0 (not allowed)
    return (f"{gems} the question (similarity >= {lo:g}) but none was returned under {params.scoring} "
            f"scoring; check the number of gems per reflection k (now {params.k}).")
