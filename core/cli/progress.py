"""A dependency-free text progress bar for the CLI (the UI uses st.progress)."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``bar.update(fraction)`` redraws ``label [#####.....]  42%`` in place."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30):
        self.label, self.stream, self.width = label, stream, width
        self._last = -1
        self._start = time.monotonic()
        self._tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, fraction: float, detail: str = "") -> None:
        pct = int(max(0.0, min(1.0, fraction)) * 100)
        if pct == self._last or (not self._tty and pct % 10 and pct != 100):
            return  # redraw only on change; in logs (no tty) every 10%
        self._last = pct
        filled = pct * self.width // 100
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {pct:3d}% {detail}".rstrip()
        self.stream.write(("\r" if self._tty else "") + line + ("" if self._tty else "\n"))
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write(f"  ({time.monotonic() - self._start:.1f} s)\n")
            self.stream.flush()
