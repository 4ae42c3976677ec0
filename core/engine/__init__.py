"""The lattice model (docs/architecture.md, section 3): gem state, time evolution, interference, sweeps, fits.

numpy/scipy only, no I/O; imports nothing from other ``core`` packages but ``core.errors``.
"""
from core.engine.limits import Cancelled, WorkLimitExceeded
from core.engine.params import (PARAM_SPECS, PRESET_HELP, PRESET_NAMES, PRESETS, SCORING_RULES, STATE_DEFAULTS,
                                STATE_SPECS, LatticeParams, ParamSpec, StateSpec, apply_settings, preset_params)
from core.engine.durations import (TIME_UNITS, half_life, humanize_duration, lambda_for_half_life, parse_duration,
                                   unit_seconds)
from core.engine.lattice import Lattice, Observation
from core.engine.quantum import QuantumState, calculate_interference
from core.engine.trajectory import Trajectory, default_recorded, simulate, time_grid
from core.engine.sweep import DYNAMIC_PARAMS, METRICS, grid_values, measure, sweep
from core.engine.fitting import DecayFit, fit_decay
from core.engine.aging import age_in_place, aged_states, enter_with_age
from core.engine.forecast import count_below, fading_soon, fading_times

__all__ = ["PRESET_HELP", "PRESET_NAMES", "PRESETS", "SCORING_RULES", "apply_settings", "preset_params",
           "TIME_UNITS", "half_life", "humanize_duration", "lambda_for_half_life", "parse_duration", "unit_seconds",
           "age_in_place", "aged_states", "enter_with_age", "count_below", "fading_soon", "fading_times",
           "PARAM_SPECS", "STATE_DEFAULTS", "STATE_SPECS", "LatticeParams", "ParamSpec", "StateSpec", "Lattice", "Observation", "QuantumState",
           "calculate_interference", "Trajectory", "default_recorded", "simulate", "time_grid", "DYNAMIC_PARAMS",
           "METRICS", "grid_values", "measure", "sweep", "DecayFit", "fit_decay",
           "Cancelled", "WorkLimitExceeded"]
