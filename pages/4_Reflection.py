"""Reflection: ask the lattice; see the streamed answer, the ranked gems with every term of the
lattice's scoring rule, the provider trace and the state change the reflection caused; when
nothing resonates, why."""
from __future__ import annotations

import uuid

import streamlit as st

from core.access import Permission
from core.errors import LatticeError
from core.knowledge import RULE_FORMULAS
from core.service import Workbench
from ui.context import PageContext, page_context, require_store
from ui.reflection_view import error_turn, render_answer, render_details, stream_answer, summary_line
from ui.services import get_workbench
from ui.text import safe_markdown


def _new_conversation(wb: Workbench, name: str, actor_name: str, session_id: str) -> None:
    st.session_state["refl_turns"][name] = []
    wb.conversations.reset(actor_name, session_id)


def header(ctx: PageContext, wb: Workbench, turns: list, session_id: str) -> None:
    """Title, the router order, "New conversation", and a hint (or the viewer's notice)."""
    head, reset = st.columns([5, 1])
    head.title("Reflection")
    head.caption(f"Ask lattice **{ctx.name}** a question. The most resonant gems go to the LLM (router: "
                 f"{' → '.join(wb.router.metrics_snapshot())}), the answer cites them by id, and the gems used are "
                 "observed: they re-cohere and become entangled.")
    reset.button("New conversation", key="refl_reset", icon=":material/restart_alt:", on_click=_new_conversation,
                 args=(wb, ctx.name, ctx.actor.name, session_id), disabled=not turns)
    stored = ctx.lattice.params  # what the engine ranks with (the stored parameters, not unsaved edits)
    if stored.forgets:
        forgetting = f" Under this rule decay alone can drop a gem (half-life {stored.half_life_text()} at E = 1)."
    elif stored.scoring == "product":
        forgetting = " Nothing decays (decay scale λ = 0): age changes no score."
    else:
        forgetting = " Age reorders gems but never drops the most similar one."
    head.caption(f"Scoring rule **{stored.scoring}**: {RULE_FORMULAS[stored.scoring]}.{forgetting} "
                 "Change it on the Parameters page.")
    if not ctx.can(Permission.REFLECT):
        st.info(f"You are a **{ctx.actor.role.value}**: a reflection changes the lattice (it observes the gems it "
                "uses), so the engine refuses it for viewers. You can still browse the lattice and earlier "
                "answers.", icon=":material/visibility:")
    elif not turns:
        st.info("Try: *What is decoherence?*, *How does a Kuramoto model synchronise?* or *What is BM25?*",
                icon=":material/lightbulb:")


def show_turn(turn: dict, index: int, latest: bool, titles: dict) -> None:
    with st.chat_message("user"):
        st.markdown(safe_markdown(turn["question"]))
    with st.chat_message("assistant"):
        if "record" not in turn:
            getattr(st, turn["kind"])(turn["message"])
            return
        rec = turn["record"]
        render_answer(rec)
        st.caption(summary_line(rec))
        with st.expander("Ranked gems, provider trace and state change", expanded=latest,
                         icon=":material/insights:"):
            render_details(rec, titles, key=f"refl_{index}")


def ask(ctx: PageContext, wb: Workbench, question: str, turns: list, session_id: str) -> None:
    """Stream the answer to ``question`` and add the turn (or the refusal) to the history."""
    with st.chat_message("user"):
        st.markdown(safe_markdown(question))
    with st.chat_message("assistant"):
        try:
            with st.spinner("Ranking the gems…"):
                reflection = wb.reflect(ctx.name, question, ctx.actor, session_id)  # role, rate limit, input
            stream_answer(reflection)
            if reflection.record is None:
                raise LatticeError("the answer did not complete; ask again")
        except Exception as exc:  # shown, never a traceback: core errors explain themselves
            turns.append(error_turn(question, exc))
        else:
            turns.append({"question": question, "record": reflection.record.to_dict()})


# ---------------------------------------------------------------------- page
ctx = page_context()
require_store(ctx)  # reflections are stored with the lattice
wb = get_workbench()
session_id = st.session_state.setdefault("refl_session", uuid.uuid4().hex)
turns: list = st.session_state.setdefault("refl_turns", {}).setdefault(ctx.name, [])
titles = ctx.titles()

header(ctx, wb, turns, session_id)
for k, turn in enumerate(turns):
    show_turn(turn, k, latest=k == len(turns) - 1, titles=titles)
question = st.chat_input("Ask the lattice a question…", key="refl_input", max_chars=2000,
                         disabled=not ctx.can(Permission.REFLECT))  # a viewer: the notice above says why
if question:
    ask(ctx, wb, question, turns, session_id)
    st.rerun()  # redraw the history (with the details) and the sidebar's new coherence
