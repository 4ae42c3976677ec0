"""Lattice: headline figures, browse/search/filter the gems, add, edit, archive, the gems fading soon,
import, export, the lattice's preset and (demo) its reset."""
from __future__ import annotations

import math

import streamlit as st

from core.access import Permission
from core.engine import STATE_SPECS, LatticeParams, humanize_duration
from core.errors import LatticeError
from ui import charts
from ui import gems as G
from ui.compute import trajectory
from ui import gem_links
from ui.context import PageContext, flash, page_context, require_store
from ui.controls import state_input
from ui.demo_reset import can_reset, demo_reset
from ui.fading import render_fading
from ui.gem_times import gem_half_life, gem_times_panel
from ui.headline import headline_metrics
from ui.presets import creation_preset, preset_settings
from ui.services import get_workbench
from ui.tables import download_csv, table_height
from ui.text import safe_markdown

STATE_FIELDS = tuple(STATE_SPECS)  # energy, phase, coherence, uncertainty

GEM_COLUMNS = {  # pixel widths: the figures first and never clipped (a narrow progress column read "0")
    "id": st.column_config.TextColumn(width=170),
    "title": st.column_config.TextColumn(width=260),
    "coherence": st.column_config.ProgressColumn("coherence", min_value=0.0, max_value=1.0, format="%.3f",
                                                 width=130),
    "uncertainty": st.column_config.NumberColumn(format="%.3f", width=95),
    "energy": st.column_config.NumberColumn(format="%.3f", width=80),
    "phase": st.column_config.NumberColumn("phase (rad)", format="%.3f", width=95),
    "tags": st.column_config.TextColumn(width=160),
    "archived": st.column_config.CheckboxColumn(width=75),
    "updated_at": st.column_config.DatetimeColumn("updated", format="YYYY-MM-DD HH:mm", width=140)}
GEM_COLUMN_ORDER = list(GEM_COLUMNS)  # the state next to the title; tags and dates after
MAX_LINKS_SHOWN = 12
PREVIEW_HORIZON = 48.0  # lattice time units of the open gem's own trajectory, at least...
PREVIEW_HALF_LIVES = 2.0  # ...or this many of its half-lives (a week-long half-life is flat over 48 h)
MAX_PREVIEW_HORIZON = 1e5  # time units; the preview takes 240 steps whatever the horizon


def _reset_page() -> None:
    st.session_state["lat_page"] = 1


def open_selected_row(event, ids: list) -> None:
    """A row clicked in the table opens its gem: once per new selection (the table keeps its
    selection across reruns, so "Close" or another way of opening a gem is not undone)."""
    rows = list(getattr(getattr(event, "selection", None), "rows", None) or [])
    picked = ids[rows[0]] if rows and rows[0] < len(ids) else None
    new = picked is not None and picked != st.session_state.get("lat_row_opened")
    st.session_state["lat_row_opened"] = picked
    if new:
        st.session_state["lat_open_id"] = picked
        st.rerun()  # the gem card below, and the "Open a gem" choice, follow


def _open_gem(gem_id: str) -> None:
    st.session_state["lat_open_id"] = gem_id


def _open_from_choice() -> None:
    st.session_state["lat_open_id"] = st.session_state.get("lat_open_choice")


def open_from_link() -> None:
    """``?gem=<id>`` (a citation on the Reflection page, a linked gem) opens that gem."""
    gem_id = st.query_params.get("gem")
    if gem_id:
        st.session_state["lat_open_id"] = str(gem_id)
        del st.query_params["gem"]


# -------------------------------------------------------------------- browse
def tab_browse(ctx: PageContext) -> None:
    store, name = ctx.store, ctx.name
    f1, f2, f3, f4 = st.columns([2.2, 1.3, 1.6, 1])
    text = f1.text_input("Search title and content", key="lat_text", on_change=_reset_page,
                         placeholder="e.g. decay", help="Case-insensitive substring of the title or content.")
    try:
        tags = G.cached_tags(store.url, name, ctx.loaded.version)
    except LatticeError as exc:
        tags = []
        st.error(str(exc))
    tag = f2.selectbox("Tag", ["(any)"] + tags, key="lat_tag", on_change=_reset_page)
    coh = f3.slider("Coherence between", 0.0, 1.0, (0.0, 1.0), step=0.01, key="lat_coh", on_change=_reset_page)
    status = f4.selectbox("Status", ["Active", "Archived", "All"], key="lat_status", on_change=_reset_page)
    asked = int(st.session_state.setdefault("lat_page", 1))
    try:
        df, total, page = G.cached_find_gems(store, store.url, name, ctx.loaded.version, tag, text, tuple(coh),
                                             status, asked)
    except LatticeError as exc:
        st.error(str(exc))
    else:
        if page != asked:  # the filter shrank the result below this page
            st.session_state["lat_page"] = page
        gem_table(df, total, page)
    gem_id = st.session_state.get("lat_open_id")
    if gem_id:
        try:
            gem = store.get_gem(name, gem_id)
        except LatticeError:
            st.session_state.pop("lat_open_id", None)
            gem = None
        if gem is not None:
            with st.container(border=True):
                gem_card(ctx, gem)


def gem_table(df, total: int, page: int) -> None:
    """The page of matching gems, the pager and the "Open a gem" choice."""
    pages = G.page_count(total)
    ids = df["id"].tolist()
    st.session_state["lat_page_ids"] = ids
    view = G.browse_table(df)
    event = st.dataframe(view, hide_index=True, key="lat_table", on_select="rerun", selection_mode="single-row",
                         height=table_height(len(view), 420), column_config=GEM_COLUMNS,
                         column_order=[c for c in GEM_COLUMN_ORDER if c in view.columns])
    open_selected_row(event, ids)
    p1, p2, p3 = st.columns([1, 1, 3])
    if st.session_state["lat_page"] > pages:
        st.session_state["lat_page"] = pages
    p1.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key="lat_page")
    first, last = G.page_span(total, page)
    p3.caption(f"{total} gem(s) match; showing {first}–{last}. "
               "Click a row (or choose below) to open a gem.")
    if st.session_state.get("lat_open_choice") not in ids:
        st.session_state.pop("lat_open_choice", None)
    st.selectbox("Open a gem", ids, index=None, key="lat_open_choice", on_change=_open_from_choice,
                 placeholder="Choose a gem on this page…",
                 format_func=lambda i: f"{i} — {df.set_index('id').at[i, 'title'] or '(no title)'}")


def gem_card(ctx: PageContext, gem: dict) -> None:
    """The open gem: its figures, and for an editor the edit form and the archive/delete buttons."""
    h1, h2 = st.columns([4, 1])
    h1.subheader(safe_markdown(gem["title"]) or gem["id"])
    h1.caption(f"`{gem['id']}` · tags: {safe_markdown(', '.join(gem['tags'])) or 'none'} · source: "
               f"{safe_markdown(gem['source']) or '—'} · version {gem['version']} (state {gem['state_version']})"
               + (" · **archived**" if gem["archived"] else ""))
    h2.button("Close", key="lat_close", icon=":material/close:",
              on_click=lambda: st.session_state.pop("lat_open_id", None))
    m = st.columns(5)
    m[0].metric("Coherence", f"{gem['coherence']:.3f}")
    m[1].metric("Uncertainty", f"{gem['uncertainty']:.3f}")
    m[2].metric("Energy", f"{gem['energy']:.3f}")
    m[3].metric("Phase (rad)", f"{gem['phase']:.3f}")
    m[4].metric("Half-life", gem_half_life(ctx.lattice.params, gem["energy"]),
                help="This gem's own half-life E·ln 2 / λ: the time in which its coherence halves if nothing "
                     "observes it (each recall can raise E under reinforcement).")
    gem_times_panel(ctx.store, ctx.name, gem["id"], ctx.time_unit, float(ctx.lattice.t))
    linked, own = st.columns([1, 1.6])
    with linked:
        linked_gems(ctx, gem)
    with own:
        own_trajectory(ctx, gem)
    if not ctx.can(Permission.EDIT):
        st.markdown(safe_markdown(gem["content"]))
        return
    edit_form(ctx, gem)
    archive_and_delete(ctx, gem)


def linked_gems(ctx: PageContext, gem: dict) -> None:
    """The gem's entanglements, strongest first, each a button that opens the partner."""
    links = gem_links.linked_gems(ctx.lattice, gem["id"])
    st.markdown(f"**Linked gems** ({len(links)})")
    if not links:
        st.caption("No entanglements yet: gems used together in a reflection become linked.")
        return
    titles = ctx.titles()
    for k, (other, weight) in enumerate(links[:MAX_LINKS_SHOWN]):
        st.button(f"{safe_markdown(titles.get(other) or other)} · w = {weight:.2f}", key=f"lat_link_{k}_{other}",
                  on_click=_open_gem, args=(other,), icon=":material/link:", width="stretch",
                  help=f"Open gem {other} (entanglement weight {weight:.3f} of 1).")
    if len(links) > MAX_LINKS_SHOWN:
        st.caption(f"…and {len(links) - MAX_LINKS_SHOWN} weaker link(s).")


def preview_horizon(params: LatticeParams, energy: float) -> float:
    """PREVIEW_HORIZON, or PREVIEW_HALF_LIVES of the gem's half-life when that is longer (time units)."""
    life = params.half_life(float(energy))
    return PREVIEW_HORIZON if not math.isfinite(life) else min(max(PREVIEW_HORIZON, PREVIEW_HALF_LIVES * life),
                                                               MAX_PREVIEW_HORIZON)


def own_trajectory(ctx: PageContext, gem: dict) -> None:
    """The gem's coherence over the next preview_horizon under the session's parameters (a copy)."""
    idx = gem_links.gem_index(ctx.lattice, gem["id"])
    if idx is None:
        st.caption("Archived: not part of the lattice's evolution.")
        return
    horizon = preview_horizon(ctx.params, gem["energy"])
    try:
        traj = trajectory(ctx.lattice, ctx.cache_key, ctx.params.to_dict(), horizon, horizon / 240, (idx,))
    except LatticeError as exc:
        st.caption(f"No preview: {exc}")
        return
    fig = charts.coherence_over_time(traj.series, traj.gems, {gem["id"]: gem["title"] or gem["id"]}, [gem["id"]],
                                     ctx.time_unit)
    fig.update_layout(height=260, title=dict(text=f"This gem over the next {humanize_duration(horizon, ctx.time_unit)}"),
                      legend=dict(orientation="h", y=-0.35), margin=dict(t=40, b=40))
    st.plotly_chart(fig, key="lat_gem_trajectory")


def edit_form(ctx: PageContext, gem: dict) -> None:
    # a new content or state version (an edit, an evolution) resets the form
    ek = f"lat_e_{gem['id']}_{gem['version']}_{gem['state_version']}"
    with st.form("lat_edit_form"):
        e_title = st.text_input("Title", gem["title"], key=f"{ek}_title")
        e_content = st.text_area("Content", gem["content"], height=140, key=f"{ek}_content")
        c1, c2 = st.columns(2)
        e_tags = c1.text_input("Tags (comma-separated)", ", ".join(gem["tags"]), key=f"{ek}_tags")
        e_source = c2.text_input("Source", gem["source"], key=f"{ek}_source")
        s1, s2, s3, s4 = st.columns(4)
        e_energy, e_phase, e_coh, e_unc = [state_input(col, name, gem[name], key=f"{ek}_{name}")
                                           for col, name in zip((s1, s2, s3, s4), STATE_FIELDS)]
        save = st.form_submit_button("Save changes", type="primary", icon=":material/save:", key="lat_save")
    if not save:
        return
    new = {"title": e_title, "content": e_content, "tags": G.parse_tags(e_tags), "source": e_source,
           "energy": e_energy, "phase": e_phase, "coherence": e_coh, "uncertainty": e_unc}
    try:
        changed = G.save_edit(ctx.store, ctx.name, gem, ctx.actor, new)
    except LatticeError as exc:
        st.error(f"Not saved: {exc}")
        return
    if not changed:
        st.info("Nothing changed.")
    else:
        flash("success", f"Saved {', '.join(changed)} of gem {gem['id']!r}.")
        st.rerun()


def archive_and_delete(ctx: PageContext, gem: dict) -> None:
    store, name, actor = ctx.store, ctx.name, ctx.actor
    a1, a2, a3 = st.columns([1, 1.4, 1])
    verb = "Restore" if gem["archived"] else "Archive"
    if a1.button(verb, key="lat_archive", icon=":material/unarchive:" if gem["archived"]
                 else ":material/archive:"):
        try:
            (store.restore_gem if gem["archived"] else store.archive_gem)(name, gem["id"], actor)
        except LatticeError as exc:
            st.error(f"Not done: {exc}")
        else:
            flash("success", f"{verb}d gem {gem['id']!r}.")
            st.rerun()
    sure = a2.checkbox("Delete for good (cannot be undone)", key="lat_delete_sure")
    if a3.button("Delete", key="lat_delete", icon=":material/delete_forever:", disabled=not sure):
        try:
            store.delete_gem(name, gem["id"], actor)
        except LatticeError as exc:
            st.error(f"Not deleted: {exc}")
        else:
            st.session_state.pop("lat_open_id", None)
            flash("success", f"Deleted gem {gem['id']!r} and its entanglements.")
            st.rerun()


# ----------------------------------------------------------------------- add
def tab_add(ctx: PageContext) -> None:
    if not ctx.can(Permission.EDIT):
        st.info("Adding gems needs the researcher or admin role.")
        return
    with st.form("lat_add_form", clear_on_submit=True):
        a_content = st.text_area("Content (required)", height=120, key="lat_a_content",
                                 placeholder="One short unit of knowledge: a note, a fact, a paragraph.")
        c1, c2, c3 = st.columns(3)
        a_title = c1.text_input("Title", key="lat_a_title")
        a_tags = c2.text_input("Tags (comma-separated)", key="lat_a_tags")
        a_id = c3.text_input("Id (optional)", help="Left empty, the store assigns one.", key="lat_a_id")
        s1, s2, s3, s4 = st.columns(4)
        a_energy, a_phase, a_coh, a_unc = [state_input(col, name) for col, name in zip((s1, s2, s3, s4), STATE_FIELDS)]
        add = st.form_submit_button("Add gem", type="primary", icon=":material/add:", key="lat_add")
    if not add:
        return
    try:
        new_id = ctx.store.add_gem(ctx.name, ctx.actor, a_content, id=a_id.strip() or None, title=a_title,
                                   tags=G.parse_tags(a_tags), energy=a_energy, phase=a_phase, coherence=a_coh,
                                   uncertainty=a_unc)
    except LatticeError as exc:
        st.error(f"Not added: {exc}")
    else:
        st.session_state["lat_open_id"] = new_id
        flash("success", f"Added gem {new_id!r} (open below on *Browse & edit*).")
        st.rerun()


# -------------------------------------------------------------------- import
def tab_import(ctx: PageContext) -> None:
    report = st.session_state.get("lat_import_report")
    if report:
        getattr(st, report["kind"])(report["message"])
        if report["issues"] is not None and len(report["issues"]):
            st.dataframe(report["issues"], hide_index=True, height=table_height(len(report["issues"]), 300))
            download_csv(report["issues"], "rejected-rows.csv", key="lat_issues_csv", label="Rejected rows (CSV)")
    if not ctx.can(Permission.EDIT):
        st.info("Importing needs the researcher or admin role.")
        return
    st.markdown("Upload **one JSONL or CSV file** (optionally with its `<name>.entanglements.csv`), "
                "**Markdown/text files**, or a **zip** of them. Fields: `content` (required), `id`, `title`, "
                "`tags`, `source`, `energy`, `phase`, `coherence`, `uncertainty`, `created_at` (ISO 8601 with a "
                "time zone, or a lattice time: the gem enters aged as if added then). A **chat transcript** "
                "(JSONL rows of `time`, `speaker`, `text`, optional `session`) becomes one gem per message.")
    files = st.file_uploader("Files to import", type=G.UPLOAD_TYPES, accept_multiple_files=True,
                             key="lat_import_files")
    i1, i2, i3, i4 = st.columns([1.5, 1.5, 1.5, 1.5])
    target = i1.text_input("Into lattice", value=ctx.name, key="lat_import_target",
                           help="An existing lattice, or a new name to create one.")
    new_lattice = target.strip() not in ("", ctx.name) and not ctx.store.exists(target.strip())
    preset = creation_preset(i2, "lat_import_preset", new_lattice)
    skip_bad = i3.checkbox("Skip bad rows (import the rest)", key="lat_import_skip",
                           help="Off: all or nothing - one bad row and nothing is written.")
    split = i4.checkbox("Split Markdown at headings", key="lat_import_split")
    if st.button("Import", key="lat_import_run", type="primary", icon=":material/upload:", disabled=not files):
        bar = st.progress(0.0, text="Reading the files…")
        st.session_state["lat_import_report"] = G.import_uploads(
            ctx.store, files, target.strip(), ctx.actor, split_headings=split, skip_bad=skip_bad, preset=preset,
            progress=lambda done, n: bar.progress(min(1.0, done / max(n, 1)), text=f"Embedding {done}/{n} gems…"))
        st.rerun()


# -------------------------------------------------------------------- export
def tab_export(ctx: PageContext) -> None:
    name = ctx.name
    st.markdown("Download the lattice's gems (with their state) as JSONL or CSV, and its entanglements as CSV: "
                "together they re-import the same lattice.")
    x1, x2, x3 = st.columns([1, 1.4, 1.6])
    fmt = x1.radio("Format", ["jsonl", "csv"], horizontal=True, key="lat_export_fmt")
    include_archived = x2.checkbox("Include archived gems", key="lat_export_archived")
    if x3.button("Prepare export", key="lat_export_run", icon=":material/inventory_2:"):
        try:
            data, edges, info = G.export_bytes(ctx.store, name, fmt, include_archived)
        except LatticeError as exc:
            st.error(f"No export: {exc}")
        else:
            st.session_state["lat_export"] = {"fmt": fmt, "data": data, "edges": edges, "info": info,
                                              "version": ctx.loaded.version}
    exp = st.session_state.get("lat_export")
    if not exp:
        return
    info = exp["info"]
    st.success(f"{info['gems']} gem(s) and {info['entanglements']} entanglement(s) of **{name}** "
               f"(version {exp['version']}) ready.")
    d1, d2, _ = st.columns([1, 1, 2])
    d1.download_button(f"Download {name}.{exp['fmt']}", exp["data"], file_name=f"{name}.{exp['fmt']}",
                       mime="application/jsonl" if exp["fmt"] == "jsonl" else "text/csv", key="lat_dl_gems",
                       icon=":material/download:")
    if exp["edges"]:
        d2.download_button(f"Download {name}.entanglements.csv", exp["edges"],
                           file_name=f"{name}.entanglements.csv", mime="text/csv", key="lat_dl_edges",
                           icon=":material/download:")


# ------------------------------------------------------------ fading, settings
def tab_fading(ctx: PageContext) -> None:
    st.markdown("Gems whose coherence falls below the lattice's fading threshold soon if nothing uses them "
                "(a forecast from the stored state: no simulation).")
    render_fading(ctx.loaded)


def tab_settings(ctx: PageContext) -> None:
    preset_settings(ctx)
    if can_reset(ctx):
        st.divider()
        demo_reset(ctx)


# ---------------------------------------------------------------------- page
ctx = page_context()
require_store(ctx)  # this page works on the database only

st.title("Lattice")
st.caption(f"The gems of lattice **{ctx.name}**: search, filter, open one to read or edit it; import and export "
           "files.")
headline_metrics(ctx.store, get_workbench(), ctx.name, ctx.lattice, ctx.loaded.version)
if not ctx.can(Permission.EDIT):
    st.info(f"You are a **{ctx.actor.role.value}**: the lattice is read-only for you (the engine refuses edits).",
            icon=":material/visibility:")

open_from_link()
tabs = st.tabs(["Browse & edit", "Fading soon", "Add a gem", "Import", "Export", "Preset & reset"])
with tabs[0]:
    tab_browse(ctx)
with tabs[1]:
    tab_fading(ctx)
with tabs[2]:
    tab_add(ctx)
with tabs[3]:
    tab_import(ctx)
with tabs[4]:
    tab_export(ctx)
with tabs[5]:
    tab_settings(ctx)
