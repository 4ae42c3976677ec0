"""What every page needs, in one call: ``ctx = page_context()``.

The page gets the logged-in :class:`~core.access.Actor`, the lattice (from the
:class:`~core.service.LatticeSource` seam), the session's validated
:class:`~core.engine.LatticeParams`, and the shared sidebar is drawn. Each page calls
it itself, so a page also works when it is opened on its own (AppTest, direct run):
the login gate is repeated there (a no-op when already logged in).

Where lattices come from is decided in :func:`lattice_source` only.
"""
from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from core.access import Actor, Permission
from core.engine import PARAM_SPECS, PRESET_HELP, Lattice, LatticeParams, ParamSpec, preset_params
from core.errors import LatticeError, ValidationError
from core.service import DEMO_DIR, DemoFileSource, LatticeSource, LatticeView, gem_titles
from ui.auth import login_gate, logout_button
from ui.text import plural

if TYPE_CHECKING:  # for the annotation only: _source() imports core.store when it is needed
    from core.store import Store

SOURCE_ENV = "LATTICE_SOURCE"  # "demo" or "store"
DEFAULT_SOURCE = "store"  # the Crystal Lattice DB; "demo" serves the shipped files from memory
DEMO_DIR_ENV = "LATTICE_DEMO_DIR"  # tests may point the demo source at other files
PARAMS_KEY = "params"
PARAMS_FOR_KEY = "params_for_lattice"
LATTICE_KEY = "lattice_name"
FLASH_KEY = "flash"


@st.cache_resource(show_spinner=False)
def _source(kind: str, demo_dir: str, database_url: str) -> LatticeSource:
    if kind == "demo":
        return DemoFileSource(Path(demo_dir))
    if kind == "store":  # the Crystal Lattice DB (LATTICE_DATABASE_URL, default SQLite in data/)
        from core.service import StoreSource

        from ui.services import _store, _workbench
        # the same Store and lattice cache as the Workbench: one copy of each lattice per process
        return StoreSource(_store(database_url), lattices=_workbench(database_url).lattices)
    raise LatticeError(f"{SOURCE_ENV}={kind!r} is not a known lattice source; use 'demo' or 'store'")


def forget_lattice_views() -> None:
    """Drop the process's lattice source (and with it the views it keeps), for when a lattice
    was rebuilt under the same name: its versions start again, so a kept view could pass for it."""
    _source.clear()
    with _TITLES_LOCK:
        _TITLES.clear()


def lattice_source() -> LatticeSource:
    """The process-wide lattice source (one per process: ``st.cache_resource``)."""
    return _source(os.environ.get(SOURCE_ENV, DEFAULT_SOURCE).strip().lower() or DEFAULT_SOURCE,
                   os.environ.get(DEMO_DIR_ENV) or str(DEMO_DIR), os.environ.get("LATTICE_DATABASE_URL", "").strip())


@dataclass
class PageContext:
    actor: Actor
    source: LatticeSource
    loaded: LatticeView
    params: LatticeParams

    @property
    def lattice(self) -> Lattice:
        """The stored state: read-only for pages (simulations evolve a copy, ``ui.compute``)."""
        return self.loaded.lattice

    @property
    def gems(self):
        return self.loaded.gems

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def time_unit(self) -> str:
        return self.params.time_unit

    @property
    def cache_key(self) -> tuple:
        """Identifies this lattice state for ``st.cache_data`` (source, name, version, clock)."""
        return (type(self.source).__name__, self.loaded.name, self.loaded.version, float(self.lattice.t))

    def titles(self) -> dict:
        """``{gem id: display title}`` of the lattice's gems (the id when a gem has no title).

        Built once per loaded lattice (the source hands out the same view until the lattice
        changes) and shared: at 100k gems building it took 0.3-0.9 s per page run. Treat as
        read-only."""
        return _view_titles(self.loaded)

    @property
    def store(self) -> Store:
        """The :class:`core.store.Store` behind the lattice source (pages that edit gems,
        reflect, back up...). Raises LatticeError when the source is not the database."""
        store = getattr(self.source, "store", None)
        if store is None:
            raise LatticeError(f"this page needs the Crystal Lattice DB, but the lattice source is "
                               f"{self.source.label}; unset {SOURCE_ENV} (or set {SOURCE_ENV}=store) and "
                               f"restart the app")
        return store

    def can(self, permission: Permission | str) -> bool:
        return self.actor.can(permission)

    def advance(self, dt: float) -> LatticeView:
        """Advance the lattice clock for real (the source checks the role)."""
        self.loaded = self.source.advance(self.name, dt, self.actor)
        return self.loaded


_TITLES: OrderedDict[int, tuple[weakref.ref, dict]] = OrderedDict()  # id(view) -> (the view, its titles)
_TITLES_KEPT = 8  # views (lattices and versions) whose titles are kept
_TITLES_LOCK = threading.Lock()


def _view_titles(view: LatticeView) -> dict:
    with _TITLES_LOCK:
        hit = _TITLES.get(id(view))
        if hit is not None and hit[0]() is view:
            return hit[1]
    ids = list(view.lattice.ids)
    titles = dict(zip(ids, gem_titles(view.gems, ids)))
    with _TITLES_LOCK:
        _TITLES[id(view)] = (weakref.ref(view), titles)
        while len(_TITLES) > _TITLES_KEPT:
            _TITLES.popitem(last=False)
    return titles


def write_button(ctx: PageContext, action: str, permission: Permission | str = Permission.EDIT) -> dict:
    """``disabled``/``help`` arguments of a button that writes: disabled, saying why, for a
    role without ``permission`` (the engine refuses it anyway; nobody should find out by clicking)."""
    if ctx.can(permission):
        return {}
    return {"disabled": True, "help": f"You are a {ctx.actor.role.value}: only a researcher or an admin may "
                                      f"{action} (the engine refuses it for your role)."}


def flash(kind: str, message: str) -> None:
    """Show ``message`` (st.success/info/warning/error) at the top of the next run."""
    st.session_state.setdefault(FLASH_KEY, []).append((kind, message))


def _show_flash() -> None:
    # Always one container, messages or not: the elements after it keep their positions, so
    # the browser keeps e.g. the selected tab when a message comes or goes.
    with st.container():
        for kind, message in st.session_state.pop(FLASH_KEY, []):
            getattr(st, kind, st.info)(message)


def session_params(loaded: LatticeView) -> LatticeParams:
    """The session's parameters; start from the lattice's own for a newly chosen lattice."""
    if st.session_state.get(PARAMS_FOR_KEY) != loaded.name or not isinstance(
            st.session_state.get(PARAMS_KEY), LatticeParams):
        st.session_state[PARAMS_KEY] = loaded.lattice.params
        st.session_state[PARAMS_FOR_KEY] = loaded.name
    return st.session_state[PARAMS_KEY]


def set_params(params: LatticeParams) -> None:
    st.session_state[PARAMS_KEY] = params


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def unit_text(spec: ParamSpec, time_unit: str) -> str:
    """A parameter's unit in the lattice's time unit: "1/time unit" -> "1/hour", "time units" -> "hours"."""
    return spec.unit.replace("time units", f"{time_unit}s").replace("time unit", time_unit)


def changed_from_preset(params: LatticeParams) -> list[str]:
    """Names of the parameters that differ from the preset's values, and, for what a preset
    leaves alone (f, K, η, ...), from the defaults: what someone changed on purpose."""
    reference = preset_params(params.preset, LatticeParams(time_unit=params.time_unit))
    return [n for n in PARAM_SPECS if getattr(params, n) != getattr(reference, n)]


def decay_summary(params: LatticeParams) -> None:
    """The half-life at E = 1 and the preset (the sidebar's answer to "how fast does it forget?")."""
    st.metric("Half-life at E = 1", params.half_life_text(),
              help=f"t½ = E·ln 2 / λ with {PARAM_SPECS['lambda_'].label} = {params.lambda_:.4g} per "
                   f"{params.time_unit}: the time in which an unused gem of energy 1 loses half its "
                   "coherence (energy E multiplies it).")
    st.caption(f"Preset **{params.preset}** · {params.scoring} scoring", help=PRESET_HELP[params.preset] + ".")


def render_sidebar(ctx: PageContext) -> None:
    lat = ctx.lattice
    s = lat.summary()
    with st.sidebar:
        st.divider()
        st.caption(f"Source: {ctx.source.label}")
        st.metric("Lattice clock", f"t = {plural(s['t'], ctx.time_unit)}",
                  help="Manual clock: it moves only when someone advances it (Evolution page).")
        c1, c2 = st.columns(2)
        c1.metric("Gems", f"{s['gems']}")
        c2.metric("Links", f"{s['entanglements']}")
        c1.metric("Mean c", f"{s['mean_coherence']:.3f}", help="Mean coherence of all gems (0-1).")
        c2.metric("R", f"{s['R']:.3f}", help="Kuramoto order parameter |mean(c·e^{iφ})| (0-1).")
        decay_summary(ctx.params)
        changed = changed_from_preset(ctx.params)
        with st.expander(f"Active parameters ({len(changed)} changed)", expanded=bool(changed)):
            lines = []
            for name, value in ctx.params.to_dict().items():
                spec = PARAM_SPECS[name]
                mark = "**" if name in changed else ""
                unit = unit_text(spec, ctx.time_unit)
                lines.append(f"- {spec.label}: {mark}{_fmt(value)}{mark}{f' {unit}' if unit else ''}")
            st.markdown("\n".join(lines))
            st.caption(f"Bold = changed from the **{ctx.params.preset}** preset (or, where a preset sets nothing, "
                       "from the default). Edit on *Parameters & experiments*.")
        st.divider()
        st.caption(f"Signed in as **{ctx.actor.name}** · {ctx.actor.role.value}")
        logout_button(st.sidebar)


def require_store(ctx: PageContext) -> Store:
    """The Store for pages that only work on the database: elsewhere the page stops with a
    message saying what to change (the demo-file source has no Store)."""
    try:
        return ctx.store
    except LatticeError as exc:
        st.error(str(exc))
        st.stop()


def page_context() -> PageContext:
    """Log-in check, lattice, parameters and the shared sidebar for the calling page."""
    actor = login_gate()
    try:
        source = lattice_source()
        names = source.names()
        if not names:
            raise LatticeError("the lattice source has no lattices yet; build one with `python -m core demo`")
        if st.session_state.get(LATTICE_KEY) not in names:
            st.session_state[LATTICE_KEY] = names[0]
        name = st.sidebar.selectbox("Lattice", names, key=LATTICE_KEY,
                                    help="Which lattice every page shows and simulates.")
        loaded = source.load(name)
        params = session_params(loaded)
    except (LatticeError, ValidationError) as exc:
        st.error(str(exc))
        st.stop()
    ctx = PageContext(actor, source, loaded, params)
    render_sidebar(ctx)
    _show_flash()
    return ctx
