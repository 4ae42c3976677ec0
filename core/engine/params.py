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
from core.engine.limits import MAX_ENERGY, MAX_PHASE, name_gems

TIME_UNITS: dict[str, float] = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
"""Lattice time units and their length in seconds (used by wall-clock lattices)."""


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
    ParamSpec("min_score", "Minimum resonance", 0.05, 0.0, 1.0, "",
              "Below this resonance nothing is retrieved and the reflection says so.", step=0.01),
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


# Consistency guard: the dataclass and the spec table must list the same parameters.
assert [f.name for f in fields(LatticeParams)] == list(PARAM_SPECS), "PARAM_SPECS out of sync"
assert LatticeParams().to_dict() == {n: s.default for n, s in PARAM_SPECS.items()}
