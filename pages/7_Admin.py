"""Admin: backups and restores, scheduled snapshots, the transaction log, users (admin only; the engine checks too)."""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core.access import Permission, PermissionDenied, Role, require
from core.auth import add_user_to_file, credentials_path, demo_mode, list_users
from core.errors import LatticeError
from ui import admin as A
from ui.context import PageContext, flash, page_context, require_store
from ui.tables import download_csv, table_height


# -------------------------------------------------------------- backup/restore
def tab_backup(ctx: PageContext) -> None:
    b1, b2 = st.columns(2, gap="large")
    with b1:
        backup_lattice(ctx)
        backup_database(ctx)
    with b2:
        restore(ctx)
    snaps = ctx.store.snapshots()
    if not snaps.empty:
        st.caption("Backups and restores recorded in this database (newest first):")
        shown = A.snapshots_table(snaps)
        st.dataframe(shown, hide_index=True, key="adm_snapshots", height=table_height(len(shown), 250))


def backup_lattice(ctx: PageContext) -> None:
    st.subheader("Back up")
    st.markdown(f"A consistent snapshot of lattice **{ctx.name}**: gems, embeddings, entanglements and state, "
                "with a checksum manifest (zip).")
    if st.button("Create backup", key="adm_backup", type="primary", icon=":material/backup:"):
        try:
            data, info = A.backup_bytes(ctx.store, ctx.name, ctx.actor)
        except LatticeError as exc:
            st.error(f"No backup: {exc}")
        else:
            st.session_state["adm_snapshot"] = {"data": data, "info": info,
                                                "file": A.snapshot_filename(ctx.name, info["version"])}
    snap = st.session_state.get("adm_snapshot")
    if snap:
        info = snap["info"]
        st.success(f"Snapshot of **{info['lattice']}** ready: {info['gems']} gems, version {info['version']}, "
                   f"t = {info['t']:.4g}, sha256 `{info['sha256'][:16]}…` ({len(snap['data']) / 1024:.0f} KB).")
        st.download_button("Download snapshot", snap["data"], file_name=snap["file"], mime="application/zip",
                           key="adm_download", icon=":material/download:", type="primary")


def backup_database(ctx: PageContext) -> None:
    st.subheader("Whole database")
    st.markdown("Every lattice with its log, runs, reflections and audit: an online copy of the SQLite file "
                "(the app keeps running), checked for integrity.")
    if not A.database_backup_supported(ctx.store):
        st.info("This database is PostgreSQL: back it up with `pg_dump -Fc -d lattice -f lattice.dump` "
                "(restore with `pg_restore --clean --if-exists`); see the README.", icon=":material/info:")
    elif st.button("Back up the whole database", key="adm_db_backup", icon=":material/database:"):
        try:
            data, info = A.database_backup_bytes(ctx.store, ctx.actor)
        except LatticeError as exc:
            st.error(f"No backup: {exc}")
        else:
            st.session_state["adm_db_copy"] = {"data": data, "info": info, "file": A.database_copy_filename()}
    copy = st.session_state.get("adm_db_copy")
    if copy:
        info = copy["info"]
        st.success(f"Database copy ready: {len(info['lattices'])} lattice(s), {info['bytes'] / 1024:.0f} KB, "
                   f"sha256 `{info['sha256'][:16]}…`.")
        if copy["data"] is None:
            st.warning("Too large to download through the browser; run `python -m core db backup --out PATH` "
                       "on the server instead.")
        else:
            st.download_button("Download database", copy["data"], file_name=copy["file"],
                               mime="application/vnd.sqlite3", key="adm_db_download", icon=":material/download:")


def restore(ctx: PageContext) -> None:
    st.subheader("Restore")
    st.markdown("Upload a snapshot zip. It is **verified completely** (checksums, every gem) first and "
                "nothing is written; you then see what it holds and confirm. The lattice is replaced in one "
                "transaction (verified again) and the restore is logged.")
    upload = st.file_uploader("Snapshot (.zip)", type=["zip"], key="adm_restore_file")
    target = st.text_input("Restore into lattice (empty: the snapshot's own name)", key="adm_restore_name")
    if upload is None:
        st.session_state.pop("adm_verified", None)
        return
    stamp = (upload.file_id, target.strip())
    checked = st.session_state.get("adm_verified")
    if not checked or checked["stamp"] != stamp:  # verify each new file (or target) once
        try:
            checked = {"stamp": stamp, "info": A.verify_upload(ctx.store, upload.getvalue(), upload.name,
                                                                 target.strip() or None), "error": None}
        except LatticeError as exc:
            checked = {"stamp": stamp, "info": None, "error": str(exc)}
        st.session_state["adm_verified"] = checked
    if checked["error"]:
        st.error(f"Not restored, nothing was changed: {checked['error']}")
    elif st.session_state.get("adm_restored") == stamp:
        st.info(f"{upload.name} has been restored. Upload another snapshot to restore again.")
    else:
        with st.container(border=True, key="adm_verified_box"):
            confirm_restore(ctx, checked["info"], upload, target, stamp)


def confirm_restore(ctx: PageContext, v: dict, upload, target: str, stamp: tuple) -> None:
    """What the verified snapshot holds, what it replaces, and the confirm button."""
    store = ctx.store
    st.markdown(f"**Verified** ✓ `{v['file']}`: all {v['members']} members match their "
                f"checksums, every gem is valid.")
    m = st.columns(4)
    m[0].metric("Lattice", v["lattice"])
    m[1].metric("Gems", f"{v['gems']}", help=f"{v['archived']} archived, {v['entanglements']} entanglements")
    m[2].metric("Lattice time", f"{v['t']:.4g} {v['time_unit']}s".strip())
    m[3].metric("Version", f"{v['version']}")
    st.caption(f"Taken {v['created_at'] or 'at an unknown time'} · snapshot sha256 "
               f"`{v['sha256'][:16]}…` · checksums OK · embedder {v['embedder']} ({v['dim']}-d) · "
               f"mean coherence {v['mean_coherence']:.3f}")
    current = store.info(v["target"]) if store.exists(v["target"]) else None  # as of now
    if current is not None:
        st.warning(f"Confirming **replaces** lattice **{v['target']}** (now {current.gems} "
                   f"gems, version {current.version}) with these {v['gems']} gems.")
    else:
        st.info(f"Confirming creates lattice **{v['target']}** with these {v['gems']} gems.")
    if st.button(f"Confirm restore into {v['target']}", key="adm_restore_confirm", type="primary",
                 icon=":material/settings_backup_restore:"):
        try:
            # replace only what the warning above announced: a lattice created since is refused
            info = A.restore_upload(store, upload.getvalue(), upload.name, ctx.actor, target.strip() or None,
                                    overwrite=current is not None)
        except LatticeError as exc:
            st.error(f"Not restored, nothing was changed: {exc}")
        else:
            st.session_state["adm_restored"] = stamp
            flash("success", f"Restored lattice **{info['lattice']}** from {info['path']}: "
                             f"{info['gems']} gems, now version {info['version']}.")
            st.rerun()


def tab_scheduled(ctx: PageContext) -> None:
    view = A.scheduled_view()
    st.caption(view.schedule)
    if view.error:
        st.error(view.error)
        return
    if not view.entries:
        st.info(f"No scheduled snapshots in {view.folder} yet.", icon=":material/schedule:")
        return
    if view.corrupt:
        st.error(f"{len(view.corrupt)} snapshot(s) failed verification (CORRUPT below): they are not counted as "
                 "kept copies and stay on disk until you look at them.", icon=":material/error:")
    if view.failing():
        st.warning(f"The newest snapshot attempt failed for: {', '.join(view.failing())} (see the problem column).")
    table = A.scheduled_snapshots_table(view.entries, time.time())
    st.dataframe(table, hide_index=True, key="adm_scheduled", height=table_height(len(table), 400))


# ------------------------------------------------------------------------ log
def tab_log(ctx: PageContext) -> None:
    f1, f2, f3 = st.columns([2, 1, 1])
    chosen = f1.multiselect("Kinds", A.LOG_KINDS, key="adm_log_kinds", placeholder="All kinds")
    who = f2.text_input("Actor", key="adm_log_actor", placeholder="Any user")
    limit = f3.number_input("Most recent entries", min_value=10, max_value=100_000, value=500, step=100,
                            key="adm_log_limit")
    try:  # read once per lattice version and filters: a rerun reads nothing
        log = A.log_view(ctx.store, ctx.store.url, ctx.name, ctx.loaded.version, tuple(chosen), int(limit))
    except LatticeError as exc:
        st.error(str(exc))
        return
    log = A.filter_actor(log, who)
    st.caption(f"{len(log)} entr{'y' if len(log) == 1 else 'ies'} of lattice **{ctx.name}**, newest first. "
               "Every state change is logged with who, when (wall and lattice time), the gems, and the values "
               "before and after.")
    st.dataframe(log, hide_index=True, key="adm_log", height=table_height(len(log), 460))
    # The CSV (complete payloads: an import's is every gem's state) is built when the button is
    # clicked, not on every rerun, and kept for the log's position and these filters.
    st.download_button("Download the log (CSV)", A.log_csv_source(ctx.store, ctx.name, chosen, who, int(limit)),
                       file_name=f"{ctx.name}-transactions.csv", mime="text/csv", key="adm_log_csv",
                       icon=":material/download:",
                       help="These entries with their complete before/after values, as the log is when you "
                            "click (built then).")


# ---------------------------------------------------------------------- audit
def tab_audit(ctx: PageContext) -> None:
    st.caption("Administrative actions (backups, restores, re-embeds, key rotations, user changes, refused "
               "attempts), newest first.")
    try:
        audit = ctx.store.audit_log(limit=500)
    except LatticeError as exc:
        st.error(str(exc))
    else:
        st.dataframe(audit, hide_index=True, key="adm_audit", height=table_height(len(audit), 400))
        download_csv(audit, "audit-log.csv", key="adm_audit_csv")


# ---------------------------------------------------------------------- users
def tab_users(ctx: PageContext) -> None:
    if demo_mode():
        st.info("**Demo mode**: the users are fixed (each with the password `demo`). Run without "
                "`LATTICE_DEMO=1` and with a credentials file to manage users here.")
        st.dataframe(A.demo_users_table(), hide_index=True, key="adm_users")
        return
    try:
        users = list_users()
    except LatticeError as exc:
        st.error(str(exc))
        users = []
    st.caption(f"Users in {credentials_path()} (passwords are stored as bcrypt hashes only).")
    st.dataframe(pd.DataFrame(users), hide_index=True, key="adm_users")
    with st.form("adm_user_form", clear_on_submit=True):
        st.subheader("Add or replace a user")
        u1, u2, u3 = st.columns(3)
        username = u1.text_input("Username", key="adm_u_username")
        display = u2.text_input("Display name", key="adm_u_display")
        role = u3.selectbox("Role", [r.value for r in Role], index=1, key="adm_u_role")
        p1, p2 = st.columns(2)
        pw1 = p1.text_input("Password", type="password", key="adm_u_pw1")
        pw2 = p2.text_input("Password again", type="password", key="adm_u_pw2")
        add = st.form_submit_button("Save user", type="primary", key="adm_u_save")
    if not add:
        return
    if pw1 != pw2:
        st.error("The passwords differ; nothing was saved.")
        return
    try:
        add_user_to_file(ctx.actor, username, pw1, role, name=display or None, audit=ctx.store.audit)
    except LatticeError as exc:
        st.error(f"Not saved: {exc}")
    else:
        flash("success", f"User {username.strip().lower()!r} ({role}) saved. Existing sessions keep "
                         "their login; the new user can log in now.")
        st.rerun()


# ---------------------------------------------------------------------- page
ctx = page_context()
try:
    require(ctx.actor, Permission.ADMIN, "open the admin page")
except PermissionDenied as exc:
    st.error(str(exc))
    st.stop()
require_store(ctx)  # backups, the log and the audit are the database's

st.title("Admin")
st.caption("Backups and restores of lattices, scheduled snapshots, the transaction log of every change, and users.")
tabs = st.tabs(["Backup & restore", "Scheduled snapshots", "Transaction log", "Audit log", "Users"])
with tabs[0]:
    tab_backup(ctx)
with tabs[1]:
    tab_scheduled(ctx)
with tabs[2]:
    tab_log(ctx)
with tabs[3]:
    tab_audit(ctx)
with tabs[4]:
    tab_users(ctx)
