"""The page registry: which pages exist, where, and who sees them.

Adding a page is one ``PageSpec`` line here plus the file in ``pages/``. A page is listed for a user whose role holds
its ``permission``; the page itself still calls ``ui.context.page_context()`` and the
engine checks the role again on every write.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.access import Actor, Permission


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to app.py
    title: str
    icon: str
    url_path: str
    section: str = "Explore"
    permission: Permission = Permission.READ
    default: bool = False


PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/1_Lattice.py", "Lattice", ":material/diamond:", "lattice"),
    PageSpec("pages/2_Evolution.py", "Evolution", ":material/timeline:", "evolution", default=True),
    PageSpec("pages/3_Interference.py", "Interference", ":material/blur_on:", "interference"),
    PageSpec("pages/4_Reflection.py", "Reflection", ":material/forum:", "reflection"),
    PageSpec("pages/5_Parameters.py", "Parameters & experiments", ":material/tune:", "parameters",
             section="Research"),
    PageSpec("pages/6_Metrics.py", "Cache & metrics", ":material/monitoring:", "metrics", section="Research"),
    PageSpec("pages/8_Evaluate.py", "Evaluate", ":material/fact_check:", "evaluate", section="Research"),
    PageSpec("pages/7_Admin.py", "Admin", ":material/admin_panel_settings:", "admin", section="Admin",
             permission=Permission.ADMIN),
)


def visible_pages(actor: Actor) -> list[PageSpec]:
    return [p for p in PAGES if actor.can(p.permission)]


def refusal(spec: PageSpec):
    """What a user without ``spec.permission`` gets at the page's URL: a clear refusal
    (not Streamlit's "Page not found"), never the page's code."""
    def refuse() -> None:
        from ui.context import page_context
        ctx = page_context()
        st.title(spec.title)
        st.error(f"The {spec.title} page is for {spec.permission.value}s only: you are signed in as "
                 f"{ctx.actor.name!r}, a {ctx.actor.role.value}. Ask an admin if you need it.", icon=":material/lock:")
    refuse.__name__ = f"refuse_{spec.url_path}"
    return refuse


def build_navigation(actor: Actor):
    """``st.navigation`` over the pages this actor may see, grouped by section; the others
    answer their URL with a refusal (a hidden page, not in the menu)."""
    sections: dict[str, list] = {}
    for spec in PAGES:
        if actor.can(spec.permission):
            page = st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.url_path, default=spec.default)
            section = spec.section
        else:  # hidden, and in the first section: no empty section header in the menu
            page = st.Page(refusal(spec), title=spec.title, icon=spec.icon, url_path=spec.url_path,
                           visibility="hidden")
            section = PAGES[0].section
        sections.setdefault(section, []).append(page)
    return st.navigation(sections, position="sidebar", expanded=True)
