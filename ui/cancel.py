"""Stopping long work from the page (a sweep): a Stop button and the engine's ``should_stop`` hook.

A Streamlit script runs to its end; a click meanwhile asks for a new run, which Streamlit
starts by interrupting the running one at its next element update (a "yield point"). The
engine polls ``should_stop`` between units of work (``core.engine.sweep``/``simulate``);
:meth:`LongWork.should_stop` turns each poll into such a yield point (a progress update, at
most every ``YIELD_EVERY_S``), so a click on *Stop* ends the work within one unit, and an
explicit request (the session flag) ends it with ``core.engine`` ``Cancelled``. The next run
sees that the work did not finish and says so: nothing of it was kept.
"""
from __future__ import annotations

import time

import streamlit as st

YIELD_EVERY_S = 0.2


class LongWork:
    """One kind of cancellable work on a page, under session keys ``<key>_*``."""

    def __init__(self, key: str, what: str):
        self.key, self.what = key, what
        self._last = 0.0
        self._bar = None

    @property
    def _running(self) -> str:
        return f"{self.key}_running"

    def stop_button(self, container=None) -> None:
        """The Stop button (always there: a click during the work interrupts it) and the notice
        after a stopped run."""
        target = container if container is not None else st
        if target.button("Stop", key=f"{self.key}_stop", icon=":material/stop_circle:",
                         help=f"Stop {self.what} while it runs; nothing of it is kept."):
            st.session_state[f"{self.key}_stop_requested"] = True
        if st.session_state.pop(self._running, False):  # the last run started the work and never finished it
            st.session_state.pop(f"{self.key}_stop_requested", None)
            st.info(f"{self.what.capitalize()} was stopped before it finished; nothing of it was kept.",
                    icon=":material/stop_circle:")

    def start(self, bar) -> None:
        st.session_state[self._running] = True
        st.session_state.pop(f"{self.key}_stop_requested", None)
        self._bar, self._last = bar, time.monotonic()

    def done(self) -> None:
        st.session_state.pop(self._running, None)

    def should_stop(self) -> bool:
        """The engine's hook: a yield point now and then (Streamlit interrupts the run here after
        a click), True once a stop was requested."""
        now = time.monotonic()
        if self._bar is not None and now - self._last >= YIELD_EVERY_S:
            self._last = now
            self._bar.progress(self._progress, text=f"{self.what.capitalize()}… {self._progress:.0%} (Stop to end it)")
        return bool(st.session_state.get(f"{self.key}_stop_requested"))

    _progress = 0.0

    def progress(self, fraction: float) -> None:
        self._progress = min(1.0, max(0.0, float(fraction)))
        if self._bar is not None:
            self._bar.progress(self._progress, text=f"{self.what.capitalize()}… {self._progress:.0%}")
