"""One validated parameter object for the whole model (docs/architecture.md, section 3).

Each parameter has a :class:`ParamSpec` with its default, allowed range, unit and a
one-line meaning; the UI builds its controls from :data:`PARAM_SPECS`, the CLI its
``--set name=value`` handling, and the store keeps ``LatticeParams.to_dict()`` with
each lattice. Defaults reproduce the seed's ``QuantumState`` exactly.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np

from core.errors import ValidationError
from core.engine.durations import TIME_UNITS, half_life, humanize_duration, lambda_for_half_life, parse_duration
from core.engine.limits import MAX_ENERGY, MAX_PHASE, name_gems

SCORING_RULES = ("product", "floor", "weighted")
PRESET_NAMES = ("seed", "memory", "archive")
RETRIEVERS = ("similarity", "hybrid")


@dataclass(frozen=True)
class ParamSpec:
    """Metadata of one parameter: what a control needs to be built and validated."""

    name: str
    label: str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    help: str = ""
    kind: str = "float"  # "float" | "int" | "choice"
    choices: tuple[str, ...] = ()
    step: float | None = None

    def range_text(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        return f"[{self.minimum}, {self.maximum}]"

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise ValidationError."""
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ValidationError(self.name, f"got {value!r}; allowed: {self.range_text()}")
            return value
        if isinstance(value, (bool, np.bool_)):
            raise ValidationError(self.name, f"got {value!r}, which is not a number; allowed range {self.range_text()}")
        if not isinstance(value, (int, float, np.integer, np.floating)):
            try:
                value = float(value) if self.kind == "float" else int(str(value).strip())
            except (TypeError, ValueError):
                raise ValidationError(
                    self.name, f"got {value!r}, which is not a number; allowed range {self.range_text()}"
                ) from None
        if self.kind == "int":
            if isinstance(value, float):
                if not math.isfinite(value) or value != int(value):
                    raise ValidationError(self.name, f"got {value!r}; must be a whole number in {self.range_text()}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ValidationError(self.name, f"got {value!r}; must be a finite number in {self.range_text()}")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            raise ValidationError(self.name, f"got {value!r}; allowed range {self.range_text()} {self.unit}".rstrip())
        return value


_SPECS = [
    ParamSpec("lambda_", "Decay scale λ", 1.0, 0.0, 100.0, "1/time unit",
              "Coherence decays as c·exp(-λ·dt/E): larger λ forgets faster.", step=0.05),
    ParamSpec("f", "Frequency scale f", 1.0, 0.0, 100.0, "rad/time unit",
              "Phase rotates by f·E·dt: how fast gems turn relative to each other.", step=0.05),
    ParamSpec("u_rate", "Uncertainty growth", 0.1, 0.0, 10.0, "1/time unit",
              "Uncertainty grows by u_rate·dt per step (the seed's dt/10), capped at 1.", step=0.01),
    ParamSpec("K", "Coupling K", 0.0, -10.0, 10.0, "rad/time unit",
              "Kuramoto coupling of entangled phases; 0 keeps the seed's uncoupled dynamics.", step=0.05),
    ParamSpec("eta", "Observation strength η", 1.0, 0.0, 1.0, "",
              "Observed gems re-cohere: c ← c + η(1-c), u ← u(1-η).", step=0.05),
    ParamSpec("rho", "Propagation ρ", 0.5, 0.0, 1.0, "",
              "Entangled partners re-cohere with strength η·ρ·w.", step=0.05),
    ParamSpec("alpha", "Coherence exponent α", 1.0, 0.0, 10.0, "",
              "Resonance r = s·c^α: how much coherence weighs against similarity.", step=0.1),
    ParamSpec("beta", "Interference weight β", 0.0, -5.0, 5.0, "",
              "Greedy re-rank by r + β·ΣI/k: phase-aligned gems reinforce, opposed ones cancel.", step=0.05),
    ParamSpec("k", "Gems per reflection k", 5, 1, 100, "gems",
              "How many resonant gems a reflection retrieves.", kind="int", step=1),
    ParamSpec("min_score", "Minimum score", 0.05, 0.0, 1.0, "",
              "Product scoring: the least resonance s·c^α a gem needs (the seed's rule: decay alone can "
              "drop a gem). Floor and weighted scoring: the least similarity s, so age never drops a "
              "relevant gem.", step=0.01),
    ParamSpec("scoring", "Scoring rule", "product", kind="choice", choices=SCORING_RULES,
              help="product: s·c^α (the seed); floor: s·(φ + (1−φ)·c^α), an old gem keeps a share φ of "
                   "its similarity; weighted: w_rel·relevance + w_rec·recency + w_imp·importance, each "
                   "normalised to [0, 1] over the lattice (the Generative Agents form)."),
    ParamSpec("coherence_floor", "Coherence floor φ", 0.3, 0.0, 1.0, "",
              "Floor scoring: the share of its similarity a fully decayed gem keeps.", step=0.05),
    ParamSpec("w_relevance", "Relevance weight", 1.0, 0.0, 10.0, "",
              "Weighted scoring: weight of the similarity s (min-max normalised over the lattice).", step=0.1),
    ParamSpec("w_recency", "Recency weight", 1.0, 0.0, 10.0, "",
              "Weighted scoring: weight of c^α (coherence decays since the gem was last used).", step=0.1),
    ParamSpec("w_importance", "Importance weight", 1.0, 0.0, 10.0, "",
              "Weighted scoring: weight of the energy E (min-max normalised; high energy decays slowly).",
              step=0.1),
    ParamSpec("retriever", "Retriever", "similarity", kind="choice", choices=RETRIEVERS,
              help="What the scoring rule reads as the similarity s: the embedder's cosine (similarity), or "
                   "hybrid: BM25 on the gems' text fused with the cosine, plus the dates a question names "
                   "(core.knowledge.hybrid)."),
    ParamSpec("reinforcement", "Reinforcement by use g", 0.0, 0.0, 10.0, "",
              "Each recall multiplies a gem's energy, and so its half-life, by 1 + g·(1 − c), c its "
              "coherence just before: spaced recalls strengthen most (0: energy never changes, the seed).",
              step=0.1),
    ParamSpec("energy_cap", "Energy cap", 100.0, 1e-3, MAX_ENERGY, "",
              "Reinforcement never raises a gem's energy above this (so its half-life stays under "
              "cap·ln2/λ).", step=1.0),
    ParamSpec("fade_below", "Faded below", 0.1, 0.0, 1.0, "",
              "Coherence under which a gem counts as faded (fading forecast, monitoring, alerts).",
              step=0.01),
    ParamSpec("preset", "Preset", "seed", kind="choice", choices=PRESET_NAMES,
              help="The preset the parameters started from: seed (the seed's dynamics and retrieval), "
                   "memory (half-lives of days, reinforcement, floor scoring) or archive (no decay)."),
    ParamSpec("dt", "Time step dt", 0.1, 0.0, 1000.0, "time units",
              "Step of simulations and of the evolution charts.", step=0.05),
    ParamSpec("time_unit", "Time unit", "hour", kind="choice", choices=tuple(TIME_UNITS),
              help="Length of one lattice time unit (for wall-clock lattices and labels)."),
]
PARAM_SPECS: dict[str, ParamSpec] = {s.name: s for s in _SPECS}


@dataclass(frozen=True)
class LatticeParams:
    """All model parameters, validated on construction. Immutable: use :meth:`replace`."""

    lambda_: float = 1.0
    f: float = 1.0
    u_rate: float = 0.1
    K: float = 0.0
    eta: float = 1.0
    rho: float = 0.5
    alpha: float = 1.0
    beta: float = 0.0
    k: int = 5
    min_score: float = 0.05
    scoring: str = "product"
    coherence_floor: float = 0.3
    w_relevance: float = 1.0
    w_recency: float = 1.0
    w_importance: float = 1.0
    retriever: str = "similarity"
    reinforcement: float = 0.0
    energy_cap: float = 100.0
    fade_below: float = 0.1
    preset: str = "seed"
    dt: float = 0.1
    time_unit: str = "hour"

    def __post_init__(self) -> None:
        for fld in fields(self):
            object.__setattr__(self, fld.name, PARAM_SPECS[fld.name].validate(getattr(self, fld.name)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, **more: Any) -> "LatticeParams":
        """Build from a mapping; unknown names are an error (a typo must not be ignored)."""
        merged = {**(values or {}), **more}
        unknown = sorted(set(merged) - set(PARAM_SPECS))
        if unknown:
            raise ValidationError(
                unknown[0], f"unknown parameter; known parameters are {', '.join(PARAM_SPECS)}"
            )
        return cls(**merged)

    def replace(self, **changes: Any) -> "LatticeParams":
        return LatticeParams.from_dict(self.to_dict(), **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def time_unit_seconds(self) -> float:
        return TIME_UNITS[self.time_unit]

    def half_life(self, energy: float = 1.0) -> float:
        """``E ln 2 / lambda_``: the half-life of a gem of ``energy``, in lattice time units (inf: no decay)."""
        return half_life(energy, self.lambda_)

    def half_life_text(self, energy: float = 1.0) -> str:
        """The half-life humanised ("42 min", "7 days", "∞")."""
        return humanize_duration(self.half_life(energy), self.time_unit)

    @property
    def forgets(self) -> bool:
        """True when decay alone can keep a gem out of a ranking (product scoring, lambda_ > 0)."""
        return self.scoring == "product" and self.lambda_ > 0

    def changed_from_preset(self) -> list[str]:
        """Names of the parameters that differ from this lattice's preset."""
        reference = preset_params(self.preset, self)
        return [n for n in PRESET_FIELDS if getattr(self, n) != getattr(reference, n)]


@dataclass(frozen=True)
class StateSpec:
    """One field of a gem's state: default, allowed range and meaning, written once.

    The engine validates arrays against it, imports take their defaults from it and the
    edit forms build their inputs from it.
    """

    name: str
    label: str
    default: float
    minimum: float = -math.inf
    maximum: float = math.inf
    minimum_open: bool = False  # energy must be > 0, not >= 0
    unit: str = ""
    help: str = ""

    def range_text(self) -> str:
        return f"{'(' if self.minimum_open else '['}{self.minimum:g}, {self.maximum:g}]"

    def rule(self) -> str:
        """The allowed values in words: "must be > 0", "must be in [0, 1]"."""
        if math.isinf(self.maximum):
            return f"must be > {self.minimum:g}" if self.minimum_open else (
                "must be a finite number" if math.isinf(self.minimum) else f"must be >= {self.minimum:g}")
        if self.minimum_open:
            return f"must be > {self.minimum:g} and <= {self.maximum:g}"
        return f"must be in [{self.minimum:g}, {self.maximum:g}]"

    def invalid(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the values that are not finite or outside the allowed range."""
        values = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            out = (values <= self.minimum if self.minimum_open else values < self.minimum) | (values > self.maximum)
        return out | ~np.isfinite(values)

    def check(self, values: np.ndarray, ids: Sequence | None = None) -> None:
        """Raise ValidationError naming the gems (by id when given) whose value is not finite or out of range."""
        values = np.asarray(values, dtype=np.float64)
        bad = np.flatnonzero(self.invalid(values))
        if bad.size:
            i = int(bad[0])
            what = "is not a finite number" if not math.isfinite(values[i]) else \
                f"is outside the allowed range {self.range_text()}"
            raise ValidationError(self.name, f"value {float(values[i])!r} of gem {name_gems(ids, bad[:1])} {what}"
                                             + (f" ({bad.size} gems: {name_gems(ids, bad)})" if bad.size > 1 else ""))


_STATE = [
    StateSpec("energy", "Energy E", 1.0, 0.0, MAX_ENERGY, minimum_open=True,
              help="Stability: decay slows as exp(-λ·dt/E) and the phase turns at f·E."),
    StateSpec("phase", "Phase φ", 0.0, -MAX_PHASE, MAX_PHASE, unit="rad",
              help="Position on the circle; gems in phase interfere constructively (stored unwrapped, "
                   "within ±1e12 rad)."),
    StateSpec("coherence", "Coherence c", 1.0, 0.0, 1.0,
              help="How present the gem is: decays with time, restored by observation."),
    StateSpec("uncertainty", "Uncertainty u", 0.1, 0.0, 1.0,
              help="Grows with time (capped at 1), shrinks when the gem is observed."),
]
STATE_SPECS: dict[str, StateSpec] = {s.name: s for s in _STATE}
STATE_DEFAULTS: dict[str, float] = {s.name: s.default for s in _STATE}


# ------------------------------------------------------------------ presets
PRESET_FIELDS = ("lambda_", "u_rate", "min_score", "scoring", "coherence_floor", "w_relevance", "w_recency",
                 "w_importance", "reinforcement", "energy_cap", "dt", "retriever")
"""What a preset sets; the rest (f, K, eta, rho, alpha, beta, k, fade_below, time unit) is kept."""

_DAY, _WEEK = 86400.0, 7 * 86400.0
PRESETS: dict[str, dict[str, Any]] = {
    # The seed's exact dynamics and retrieval: every default of LatticeParams.
    "seed": {n: PARAM_SPECS[n].default for n in PRESET_FIELDS},
    # Live memory for agents: a gem of energy 1 halves in a week, an unused one keeps 60 % of
    # its similarity (floor scoring, so age reorders and never erases; 0.3 let the gems a
    # reflection had just re-cohered crowd better matches out of the next question: 19 of 42
    # demo topic pairs a week on, against 6 at 0.6, benchmarks/answers.py), each spaced recall
    # lengthens its half-life, and uncertainty saturates after a month, not 9 hours.
    "memory": {"half_life_s": _WEEK, "u_rate_per_s": 1.0 / (30 * _DAY), "min_score": 0.05, "scoring": "floor",
               "coherence_floor": 0.6, "w_relevance": 1.0, "w_recency": 1.0, "w_importance": 1.0,
               "reinforcement": 1.0, "energy_cap": 16.0, "dt_s": 3600.0, "retriever": "hybrid"},
    # Nothing fades: similarity alone ranks (c stays 1), uncertainty stays put.
    "archive": {"lambda_": 0.0, "u_rate": 0.0, "min_score": 0.05, "scoring": "product", "coherence_floor": 0.3,
                "w_relevance": 1.0, "w_recency": 1.0, "w_importance": 1.0, "reinforcement": 0.0,
                "energy_cap": 100.0, "dt_s": 3600.0, "retriever": "similarity"},
}
PRESET_HELP = {
    "seed": "the seed's exact dynamics and retrieval (half-life 42 min at E = 1, hard forgetting): "
            "the simulation default",
    "memory": "live memory for agents: half-life 7 days at E = 1, recalls lengthen it, floor scoring φ = 0.6 "
              "(age reorders, never erases), hybrid retrieval (BM25 fused with the similarity)",
    "archive": "no decay: similarity alone ranks",
}


def preset_params(name: str, base: "LatticeParams | None" = None, time_unit: str | None = None) -> "LatticeParams":
    """``base`` (default: the defaults) with the preset ``name`` applied, in ``time_unit``
    (default: base's). The memory and archive presets define durations in seconds, so they mean
    the same half-life in any time unit; the seed's numbers are per lattice time unit, as in the seed."""
    if name not in PRESETS:
        raise ValidationError("preset", f"got {name!r}; allowed: {', '.join(PRESET_NAMES)}")
    base = base or LatticeParams()
    unit = time_unit or base.time_unit
    seconds = TIME_UNITS.get(unit)
    if seconds is None:
        raise ValidationError("time_unit", f"got {unit!r}; allowed: {', '.join(TIME_UNITS)}")
    values: dict[str, Any] = {}
    for key, value in PRESETS[name].items():
        if key == "half_life_s":
            values["lambda_"] = lambda_for_half_life(value / seconds)
        elif key == "u_rate_per_s":
            values["u_rate"] = value * seconds
        elif key == "dt_s":  # an hour, or the longest step the dt range allows (1000 s in seconds)
            values["dt"] = min(value / seconds, PARAM_SPECS["dt"].maximum)
        else:
            values[key] = value
    return base.replace(**values, preset=name, time_unit=unit)


def apply_settings(params: LatticeParams, settings: Mapping[str, Any]) -> LatticeParams:
    """``params`` with ``name=value`` settings applied (values may be text, as from ``--set``).

    Besides the parameters: ``preset=NAME`` applies a preset first, and ``half_life=14d`` sets
    lambda_ so that a gem of energy 1 halves in that time (durations as :func:`parse_duration`
    reads them; a bare number is in lattice time units).
    """
    settings = dict(settings)
    if "preset" in settings:
        params = preset_params(str(settings.pop("preset")), params, settings.get("time_unit"))
    changes: dict[str, Any] = {}
    unit = str(settings.get("time_unit", params.time_unit))
    for name, value in settings.items():
        if name == "half_life":
            if "lambda_" in settings:
                raise ValidationError("half_life", "give either half_life or lambda_, not both")
            changes["lambda_"] = lambda_for_half_life(parse_duration(value, unit, "half_life"))
        elif name in PARAM_SPECS and PARAM_SPECS[name].kind == "choice":
            changes[name] = str(value)
        else:
            changes[name] = value
    return params.replace(**changes)


# Consistency guard: the dataclass and the spec table must list the same parameters.
assert [f.name for f in fields(LatticeParams)] == list(PARAM_SPECS), "PARAM_SPECS out of sync"
assert LatticeParams().to_dict() == {n: s.default for n, s in PARAM_SPECS.items()}
assert preset_params("seed") == LatticeParams(), "the seed preset must be the defaults"
