"""A test-only hook that pauses a long operation at a known point (for crash tests).

``LATTICE_FAULT_PAUSE=<point>:<n>`` makes the process, the n-th time it reaches
``checkpoint(<point>)``, create the file ``$LATTICE_FAULT_FILE`` (if set) and sleep
until killed. Points: ``import.batch`` (after each batch of gem rows inserted),
``restore.batch`` (likewise during a restore), ``backup.member`` (after each member
written to the snapshot's temporary file), ``rotate.batch`` (after each committed
batch of a key rotation), ``reembed.batch`` (after each embedded batch). Unset
(always, outside tests): a no-op costing one dict lookup.
"""
from __future__ import annotations

import os
import time
from collections import Counter

_hits: Counter[str] = Counter()


def checkpoint(point: str) -> None:
    spec = os.environ.get("LATTICE_FAULT_PAUSE")
    if not spec:
        return
    target, _, n = spec.rpartition(":")
    if target != point:
        return
    _hits[point] += 1
    if _hits[point] != int(n or 1):
        return
    marker = os.environ.get("LATTICE_FAULT_FILE")
    if marker:
        with open(marker, "w") as f:
            f.write(f"{point}:{_hits[point]} pid={os.getpid()}\n")
    while True:  # wait for the test to kill us (SIGKILL)
        time.sleep(3600)
