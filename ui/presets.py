"""Presets on the Lattice page: the preset of a lattice an import creates, and changing the
preset of an existing lattice (researcher/admin, with a confirm step, since it changes how
fast every gem decays). Applying uses ``core.engine.preset_params`` over the lattice's stored
parameters and ``Store.update_params`` (one logged ``params`` entry; the version check refuses
it if someone else changed the lattice meanwhile).
"""
from __future__ import annotations

import streamlit as st

from core.access import Permission
from core.engine import PARAM_SPECS, PRESET_HELP, PRESET_NAMES, LatticeParams, preset_params
from core.errors import LatticeError
from core.knowledge import default_embedder
from ui.context import PageContext, flash, set_params, unit_text
from ui.controls import sync_widgets

CREATE_DEFAULT = "seed"  # a lattice the app creates is a manual-clock one: the research default


def preset_label(name: str) -> str:
    return f"{name}: {PRESET_HELP[name]}"


def creation_preset(container, key: str, new_lattice: bool) -> str | None:
    """The preset select for a lattice an import would create (None when the target exists:
    an import never changes an existing lattice's parameters)."""
    if not new_lattice:
        return None
    return container.selectbox("Preset of the new lattice", PRESET_NAMES, index=PRESET_NAMES.index(CREATE_DEFAULT),
                               key=key,
                               help="How the new lattice forgets: "
                                    + "; ".join(f"**{n}**: {PRESET_HELP[n]}" for n in PRESET_NAMES)
                                    + ". Changeable later on the Settings tab. The new lattice's embedder: "
                                    + "; ".join(f"{n}: **{default_embedder(n)}**" for n in PRESET_NAMES)
                                    + " (memory ranks with the hybrid retriever, tuned with hashing-v2).")


def differences(old: LatticeParams, new: LatticeParams) -> list[str]:
    """``"Label: old → new"`` for each parameter that differs (in the lattice's units)."""
    out = []
    for name, spec in PARAM_SPECS.items():
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            unit = unit_text(spec, new.time_unit)
            fmt = (lambda v: f"{v:.4g}") if isinstance(a, float) else str
            out.append(f"{spec.label}: {fmt(a)} → {fmt(b)}{f' {unit}' if unit else ''}")
    return out


def _apply_preset(ctx: PageContext, choice: str) -> None:
    stored = ctx.lattice.params
    try:
        new = preset_params(choice, stored)
        ctx.store.update_params(ctx.name, new, ctx.actor, expected_version=ctx.loaded.version)
    except LatticeError as exc:
        flash("error", f"Preset not applied, nothing was changed: {exc}")
        return
    set_params(new)  # the session follows the lattice's new parameters
    sync_widgets(new)
    st.session_state["lat_preset_sure"] = False
    flash("success", f"Lattice **{ctx.name}** now uses the **{choice}** preset: half-life at E = 1: "
                     f"{stored.half_life_text()} → {new.half_life_text()}; {new.scoring} scoring.")


def preset_settings(ctx: PageContext) -> None:
    """The lattice's preset, what differs from it, and (researcher/admin) changing it."""
    p = ctx.lattice.params
    st.markdown(f"**Preset: {p.preset}**: {PRESET_HELP[p.preset]}.")
    changed = [PARAM_SPECS[n].label for n in p.changed_from_preset()]
    st.caption(f"Half-life at E = 1: **{p.half_life_text()}** · {p.scoring} scoring · "
               + (f"changed from the preset: {', '.join(changed)}." if changed
                  else "no parameter changed from the preset."))
    if not ctx.can(Permission.EDIT):
        st.info("Changing the preset needs the researcher or admin role.", icon=":material/lock:")
        return
    c1, c2 = st.columns([1, 2])
    choice = c1.selectbox("Change the preset to", PRESET_NAMES, index=PRESET_NAMES.index(p.preset),
                          key="lat_preset_choice",
                          help="; ".join(f"**{n}**: {PRESET_HELP[n]}" for n in PRESET_NAMES) + ".")
    new = preset_params(choice, p)
    diff = differences(p, new)
    with c2:
        st.caption(preset_label(choice) + ".")
        if diff:
            st.markdown("Applying it changes:\n" + "\n".join(f"- {d}" for d in diff))
        else:
            st.caption("The lattice already has exactly these values.")
    sure = st.checkbox(f"Yes, change how the gems of {ctx.name} decay and are ranked", key="lat_preset_sure",
                       disabled=not diff)
    st.button("Apply the preset", key="lat_preset_apply", type="primary", icon=":material/tune:",
              disabled=not (diff and sure), on_click=_apply_preset, args=(ctx, choice),
              help="Stores the preset's parameters with the lattice (logged; the old ones stay in the log).")
