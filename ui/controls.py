"""Controls built from the parameter metadata (``core.engine.PARAM_SPECS``), and the gem picker.

Each control writes the session's parameters in an ``on_change`` callback
(``LatticeParams.replace``), so the new value is validated and already active when
the page (and the sidebar summary) reruns. An invalid value changes nothing and is
reported (``st.error``, inline for the half-life box).

The decay scale λ is shown with the half-life it gives a gem of energy 1 (``E ln 2 / λ``,
humanised in the lattice's time unit) and can be set through that half-life instead
("Half-life at E = 1": ``14d``, ``36h``, ``90min``); the two stay in sync. Parameters are
grouped, and those that only matter in some settings (the coherence floor under floor
scoring, the weights under weighted scoring, the energy cap with reinforcement) only there.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import streamlit as st

from core.engine import (PARAM_SPECS, PRESET_HELP, PRESET_NAMES, STATE_SPECS, LatticeParams, ParamSpec,
                         humanize_duration, lambda_for_half_life, parse_duration, preset_params)
from core.errors import ValidationError
from ui.compute import MAX_GEM_OPTIONS, gem_options, most_coherent_first
from ui.context import PARAMS_KEY, flash, set_params, unit_text

KEY_PREFIX = "param_"
HALF_LIFE_KEY = KEY_PREFIX + "half_life"
HALF_LIFE_LABEL = "Half-life at E = 1"
_HALF_LIFE_ERROR = HALF_LIFE_KEY + "_error"
_HALF_LIFE_FOR = HALF_LIFE_KEY + "_for"  # (λ, time unit) the box's text describes

PARAM_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Decay and rotation", ("lambda_", "f", "u_rate", "K")),
    ("Observation and reinforcement", ("eta", "rho", "reinforcement", "energy_cap")),
    ("Retrieval", ("retriever", "scoring", "k", "min_score", "alpha", "beta", "coherence_floor", "w_relevance",
                   "w_recency", "w_importance")),
    ("Preset, clock and monitoring", ("preset", "time_unit", "dt", "fade_below")),
)
"""The parameter controls by topic, in the order they are drawn."""
ONLY_WHEN: dict[str, tuple[Callable[[LatticeParams], bool], str]] = {
    "coherence_floor": (lambda p: p.scoring == "floor", "floor scoring"),
    "w_relevance": (lambda p: p.scoring == "weighted", "weighted scoring"),
    "w_recency": (lambda p: p.scoring == "weighted", "weighted scoring"),
    "w_importance": (lambda p: p.scoring == "weighted", "weighted scoring"),
    "energy_cap": (lambda p: p.reinforcement > 0, "reinforcement by use g > 0"),
}
"""Parameters that matter only in some settings (hidden otherwise): ``name: (when, "when" in words)``."""
assert sorted(n for _, names in PARAM_GROUPS for n in names) == sorted(PARAM_SPECS), "PARAM_GROUPS out of sync"


def widget_key(name: str) -> str:
    return KEY_PREFIX + name


def label_for(spec: ParamSpec) -> str:
    """``label (unit)`` with the unit as the spec states it (table columns, sweep axes)."""
    return f"{spec.label} ({spec.unit})" if spec.unit else spec.label


def param_labels(names) -> dict[str, str]:
    """``{name: label (unit)}`` of the parameters ``names``."""
    return {n: label_for(PARAM_SPECS[n]) for n in names}


def control_label(spec: ParamSpec, params: LatticeParams) -> str:
    """A control's label: ``"Decay scale λ (1/hour) · half-life 42 min"`` for the decay scale,
    ``"Frequency scale f (rad/hour)"`` for the others with a unit."""
    unit = unit_text(spec, params.time_unit)
    label = f"{spec.label} ({unit})" if unit else spec.label
    if spec.name == "lambda_":
        label += f" · half-life {params.half_life_text()}"
    return label


def relevant(name: str, params: LatticeParams) -> bool:
    """False for a parameter that has no effect under ``params`` (ONLY_WHEN)."""
    rule = ONLY_WHEN.get(name)
    return rule is None or rule[0](params)


def human_error(exc: ValidationError) -> str:
    """The error with its field said by label ("Decay scale λ: got ..."), not by its code name."""
    spec = PARAM_SPECS.get(exc.field)
    text = str(exc)
    return f"{spec.label}: {text[len(exc.field) + 2:]}" if spec and text.startswith(f"{exc.field}: ") else text


def _half_life_marker(params: LatticeParams) -> tuple[float, str]:
    return (params.lambda_, params.time_unit)


def _sync_half_life(params: LatticeParams) -> None:
    """Point the half-life box at ``params`` (before it is drawn, or from a callback)."""
    st.session_state[HALF_LIFE_KEY] = params.half_life_text()
    st.session_state[_HALF_LIFE_FOR] = _half_life_marker(params)
    st.session_state.pop(_HALF_LIFE_ERROR, None)


def _on_change(name: str) -> None:
    key = widget_key(name)
    current: LatticeParams = st.session_state[PARAMS_KEY]
    try:
        new = current.replace(**{name: st.session_state[key]})
    except ValidationError as exc:
        flash("error", f"Not applied: {human_error(exc)}")
        st.session_state[key] = getattr(current, name)
        return
    st.session_state[PARAMS_KEY] = new
    if name in ("lambda_", "time_unit"):
        _sync_half_life(new)


def parse_half_life(text: str, params: LatticeParams) -> tuple[float | None, str | None]:
    """``(λ, None)`` for a half-life text such as ``"14d"`` in ``params``' time unit, or
    ``(None, message)`` saying what is wrong and what to type."""
    spec = PARAM_SPECS["lambda_"]
    try:
        t = parse_duration(text, params.time_unit, "half_life")
        lam = lambda_for_half_life(t)
    except ValidationError as exc:
        return None, f"{HALF_LIFE_LABEL}: {str(exc)[len(exc.field) + 2:]}. Nothing was changed."
    if lam > spec.maximum:
        shortest = humanize_duration(lambda_for_half_life(spec.maximum), params.time_unit)
        return None, (f"{HALF_LIFE_LABEL}: {text!r} is shorter than the shortest allowed half-life, {shortest} "
                      f"({spec.label} at most {spec.maximum:g} per {params.time_unit}). Nothing was changed.")
    return lam, None


def _on_half_life() -> None:
    current: LatticeParams = st.session_state[PARAMS_KEY]
    lam, error = parse_half_life(st.session_state.get(HALF_LIFE_KEY, ""), current)
    if error:  # keep the typed text, so it can be corrected; the parameters are untouched
        st.session_state[_HALF_LIFE_ERROR] = error
        return
    new = current.replace(lambda_=lam)
    st.session_state[PARAMS_KEY] = new
    st.session_state[widget_key("lambda_")] = new.lambda_
    st.session_state[_HALF_LIFE_FOR] = _half_life_marker(new)
    st.session_state.pop(_HALF_LIFE_ERROR, None)


def _on_preset() -> None:
    """A preset chosen in the controls: apply its values to the session's parameters."""
    current: LatticeParams = st.session_state[PARAMS_KEY]
    name = st.session_state[widget_key("preset")]
    try:
        new = preset_params(name, current)
    except ValidationError as exc:
        flash("error", f"Not applied: {human_error(exc)}")
        st.session_state[widget_key("preset")] = current.preset
        return
    set_params(new)
    sync_widgets(new)
    flash("info", f"Preset **{name}** applied to this session's parameters: {PRESET_HELP[name]}.")


def sync_widgets(params: LatticeParams) -> None:
    """Set every parameter control to ``params`` (call from a callback, before rendering)."""
    for name, value in params.to_dict().items():
        st.session_state[widget_key(name)] = value
    _sync_half_life(params)


def reset_params(params: LatticeParams) -> None:
    set_params(params)
    sync_widgets(params)


def _help(spec: ParamSpec) -> str:
    if spec.name == "preset":
        return ("Choosing one sets its values in this session: "
                + "; ".join(f"**{n}**: {PRESET_HELP[n]}" for n in PRESET_NAMES) + ".")
    return f"{spec.help} Allowed: {spec.range_text()}. Default: {spec.default}."


def param_control(spec: ParamSpec, params: LatticeParams, container=None):
    """One control for ``spec``, initialised from ``params``; returns the widget value."""
    target = container if container is not None else st
    key = widget_key(spec.name)
    if key not in st.session_state:
        st.session_state[key] = getattr(params, spec.name)
    callback = (_on_preset, ()) if spec.name == "preset" else (_on_change, (spec.name,))
    common = dict(key=key, help=_help(spec), on_change=callback[0], args=callback[1])
    label = control_label(spec, params)
    if spec.kind == "choice":
        return target.selectbox(label, spec.choices, **common)
    if spec.kind == "int":
        return target.number_input(label, min_value=int(spec.minimum), max_value=int(spec.maximum),
                                   step=int(spec.step or 1), **common)
    # %g: a week's half-life is λ = 0.0041 per hour, which "%.3f" would show as 0.004
    return target.number_input(label, min_value=float(spec.minimum), max_value=float(spec.maximum),
                               step=float(spec.step or 0.01), format="%.4g", **common)


def half_life_control(params: LatticeParams, container=None) -> None:
    """The "Half-life at E = 1" text box (``14d``, ``36h``, ``90min``, ``inf``), in sync with λ;
    a bad value shows an inline error and changes nothing."""
    target = container if container is not None else st
    if st.session_state.get(_HALF_LIFE_FOR) != _half_life_marker(params):
        _sync_half_life(params)  # λ moved elsewhere (a preset, a reset, another page)
    target.text_input(HALF_LIFE_LABEL, key=HALF_LIFE_KEY, on_change=_on_half_life,
                      help=f"Sets {PARAM_SPECS['lambda_'].label} so that a gem of energy 1 loses half its "
                           f"coherence in this time (t½ = E·ln 2 / λ: a gem of energy 2 lasts twice as long). "
                           f"Examples: 14d, 36h, "
                           f"90min, 2w, inf (no decay); a bare number is in {params.time_unit}s.")
    error = st.session_state.get(_HALF_LIFE_ERROR)
    if error:
        target.error(error, icon=":material/error:")


def _resync_if_stale(params: LatticeParams) -> None:
    """Widgets left from another lattice or an outside change: point them at ``params``."""
    if any(widget_key(n) in st.session_state and st.session_state[widget_key(n)] != v
           for n, v in params.to_dict().items()):
        sync_widgets(params)


def param_controls(params: LatticeParams, columns: int = 3) -> None:
    """The parameters of PARAM_SPECS that matter under ``params`` (ONLY_WHEN; a caption names the
    others), by topic (PARAM_GROUPS) as grids of controls; the half-life box next to the decay scale."""
    _resync_if_stale(params)
    for title, names in PARAM_GROUPS:
        st.markdown(f"**{title}**")
        cells: list = [("param", n) for n in names if relevant(n, params)]
        if title == PARAM_GROUPS[0][0]:
            cells.insert(1, ("half_life", None))
        for row in range(0, len(cells), columns):
            cols = st.columns(columns)
            for col, (kind, name) in zip(cols, cells[row:row + columns]):
                if kind == "half_life":
                    half_life_control(params, col)
                else:
                    param_control(PARAM_SPECS[name], params, col)
        hidden: dict[str, list[str]] = {}
        for n in names:
            if not relevant(n, params):
                hidden.setdefault(ONLY_WHEN[n][1], []).append(PARAM_SPECS[n].label)
        if hidden:
            st.caption("Shown when they matter: " + "; ".join(f"{', '.join(labels)} under {when}"
                                                              for when, labels in hidden.items()) + ".")
        if title == PARAM_GROUPS[-1][0]:
            preset_caption(params)


def preset_caption(params: LatticeParams, container=None) -> None:
    """What the preset is, and which parameters differ from it (by label)."""
    target = container if container is not None else st
    changed = [PARAM_SPECS[n].label for n in params.changed_from_preset()]
    target.caption(f"Preset **{params.preset}**: {PRESET_HELP[params.preset]}. "
                   + (f"Changed from it: {', '.join(changed)}." if changed else "Nothing changed from it."))


def gem_picker(container, label: str, key: str, ids: Sequence, titles: dict, coherence: np.ndarray,
               default_count: int, **multiselect_args) -> list:
    """A multiselect of gems (default: the ``default_count`` most coherent). Above
    :data:`~ui.compute.MAX_GEM_OPTIONS` gems the browser gets a short list plus a find box
    (``<key>_find``), not every gem. Returns the chosen gem ids."""
    ids = ids if isinstance(ids, list) else list(ids)
    by_coherence = [ids[i] for i in most_coherent_first(coherence, default_count)]
    many = len(ids) > MAX_GEM_OPTIONS
    query = container.text_input(f"Find {label.lower()}", key=f"{key}_find", placeholder="title or id") if many else ""
    options, matches = gem_options(ids, titles, coherence, st.session_state.get(key, by_coherence), query)
    chosen = container.multiselect(label, options, default=by_coherence, format_func=lambda g: titles.get(g, g),
                                   key=key, **multiselect_args)
    if many:
        container.caption(f"Listing {min(matches, MAX_GEM_OPTIONS)} of {matches} matching gems (most coherent "
                          f"first); type to find others among all {len(ids)}.")
    return chosen


def state_input(container, name: str, value: float | None = None, key: str | None = None) -> float:
    """A number input for one field of a gem's state, from its StateSpec (label, unit, default, help).

    The input itself is not bounded: core validates the value and names the allowed range.
    """
    spec = STATE_SPECS[name]
    label = spec.label.split(" ")[0] + (f" ({spec.unit})" if spec.unit else "")
    return container.number_input(label, value=float(spec.default if value is None else value), format="%.4f",
                                  step=0.05 if spec.maximum <= 1.0 else 0.1,
                                  help=f"{spec.help} It {spec.rule()}.", key=key)
