"""Logging setup: the state-change log lines (the seed's QuantumLogger) go to stderr.

``core.store.txlog`` emits one JSON object per state change (gem id, coherence delta,
energy, lattice time, wall time); the router logs provider failures and broken
streams. The app logs at INFO (a server log a collector can ship); the CLI at WARNING
so its own output stays readable. ``LATTICE_LOG_LEVEL`` overrides both.
"""
from __future__ import annotations

import logging
import os
import sys

_HANDLER_NAME = "lattice-stderr"


def configure_logging(default_level: str = "INFO") -> None:
    """Attach one stderr handler to the ``core`` logger (idempotent)."""
    level = logging.getLevelName(os.environ.get("LATTICE_LOG_LEVEL", default_level).upper())
    if not isinstance(level, int):  # an unknown name: fall back rather than fail
        level = logging.INFO
    root = logging.getLogger("core")
    root.setLevel(level)
    if any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    # txlog messages are JSON objects; the prefix adds time, level and logger
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
