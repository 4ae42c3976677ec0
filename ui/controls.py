"""Controls built from the parameter metadata (``core.engine.PARAM_SPECS``), and the gem picker.

Each control writes the session's parameters in an ``on_change`` callback
(``LatticeParams.replace``), so the new value is validated and already active when
the page (and the sidebar summary) reruns. An invalid value changes nothing and is
reported with ``st.error``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import streamlit as st

from core.engine import PARAM_SPECS, STATE_SPECS, LatticeParams, ParamSpec
from core.errors import ValidationError
from ui.compute import MAX_GEM_OPTIONS, gem_options, most_coherent_first
from ui.context import PARAMS_KEY, flash, set_params

KEY_PREFIX = "param_"


def widget_key(name: str) -> str:
    return KEY_PREFIX + name


def label_for(spec: ParamSpec) -> str:
    return f"{spec.label} ({spec.unit})" if spec.unit else spec.label


def param_labels(names) -> dict[str, str]:
    """``{name: label (unit)}`` of the parameters ``names``."""
    return {n: label_for(PARAM_SPECS[n]) for n in names}


def _on_change(name: str) -> None:
    key = widget_key(name)
    current: LatticeParams = st.session_state[PARAMS_KEY]
    try:
        st.session_state[PARAMS_KEY] = current.replace(**{name: st.session_state[key]})
    except ValidationError as exc:
        flash("error", f"Not applied: {exc}")
        st.session_state[key] = getattr(current, name)


def sync_widgets(params: LatticeParams) -> None:
    """Set every parameter control to ``params`` (call from a callback, before rendering)."""
    for name, value in params.to_dict().items():
        st.session_state[widget_key(name)] = value


def reset_params(params: LatticeParams) -> None:
    set_params(params)
    sync_widgets(params)


def param_control(spec: ParamSpec, params: LatticeParams, container=None):
    """One control for ``spec``, initialised from ``params``; returns the widget value."""
    target = container if container is not None else st
    key = widget_key(spec.name)
    if key not in st.session_state:
        st.session_state[key] = getattr(params, spec.name)
    help_text = f"{spec.help} Allowed: {spec.range_text()}. Default: {spec.default}."
    common = dict(key=key, help=help_text, on_change=_on_change, args=(spec.name,))
    if spec.kind == "choice":
        return target.selectbox(label_for(spec), spec.choices, **common)
    if spec.kind == "int":
        return target.number_input(label_for(spec), min_value=int(spec.minimum), max_value=int(spec.maximum),
                                   step=int(spec.step or 1), **common)
    return target.number_input(label_for(spec), min_value=float(spec.minimum), max_value=float(spec.maximum),
                               step=float(spec.step or 0.01), format="%.3f", **common)


def param_controls(params: LatticeParams, columns: int = 3) -> None:
    """All parameters of PARAM_SPECS as a grid of controls."""
    specs = list(PARAM_SPECS.values())
    for row in range(0, len(specs), columns):
        cols = st.columns(columns)
        for col, spec in zip(cols, specs[row:row + columns]):
            param_control(spec, params, col)


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
