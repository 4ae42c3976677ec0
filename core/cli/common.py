"""What every command shares: ``--json`` output, the store, ``--set`` pairs, progress bars.

Start-up time: ``python -m core --help`` imports only the parser and the command modules, so
none of them imports a heavy package (numpy, scipy, pandas, SQLAlchemy, Alembic, the LLM SDKs)
at module level: each handler imports what it uses (``tests/cli/test_startup_imports.py``).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TextIO

from core.cli.progress import ProgressBar
from core.errors import LatticeError

if TYPE_CHECKING:
    from core.store import Store


# C0 controls but newline, DEL, C1 controls, and the bidirectional overrides and isolates
# ("Trojan Source"): a terminal acts on them (ESC sequences, BEL, CR overwriting a line).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_AND_NEWLINE = re.compile("\n|" + _CONTROL.pattern)
_NAMED = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}


def _escape(match: re.Match) -> str:
    ch = match.group()
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def clean(text: Any, newlines: bool = True) -> str:
    """``text`` safe for a terminal: control characters shown escaped (``\\x1b``, ``\\r``, ``\\u202e``).

    Every human-readable line the CLI prints goes through this (``emit``, the reflection stream,
    error messages). ``newlines=False`` also escapes ``\\n``: for one field or one table row, so
    that data cannot forge another line.
    """
    return (_CONTROL if newlines else _CONTROL_AND_NEWLINE).sub(_escape, str(text))


def say(*parts: Any, file: TextIO | None = None) -> None:
    """``print`` for human-readable output: each part :func:`clean` (newlines kept)."""
    print(*(clean(p) for p in parts), file=file if file is not None else sys.stdout)


def emit(args: argparse.Namespace, data: Any, text: str | Sequence[str]) -> None:
    """Print ``data`` as JSON when ``--json`` was given, else the human ``text``.

    ``text`` is a string (newlines kept) or a list of lines (a table: each line one line, any newline
    in the data escaped). Control characters are escaped either way; JSON escapes them itself
    (``json.dumps`` writes C0 and non-ASCII as ``\\u`` escapes; DEL too, here).
    """
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str).replace("\x7f", "\\u007f"))
    elif isinstance(text, str):
        say(text)
    else:
        say("\n".join(clean(line, newlines=False) for line in text))


def add_json_and_handler(p: argparse.ArgumentParser, handler, what: str = "the result") -> None:
    """Every command's options end alike: ``--json`` (print ``what`` as JSON), then its handler."""
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")
    p.set_defaults(handler=handler)


def add_actions(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """A command made of actions (``db upgrade``, ``keys rotate``...): returns its sub-parsers; one is required.

    The chosen action is ``args.<name>_command``.
    """
    actions = sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", metavar="ACTION")
    actions.required = True
    return actions


def open_store() -> Store:
    """The store of ``LATTICE_DATABASE_URL`` (default ``data/lattice.db``); use it as a context manager."""
    from core.store import Store
    return Store.open()


SETTING_NAMES_HELP = ("half_life=DURATION (e.g. 14d, 36h, inf: lambda_ for a half-life at E = 1), "
                     "preset=seed|memory|archive (applied first), or any parameter")


def parse_settings(pairs: list[str] | None) -> dict[str, str]:
    """``["K=0.5", "half_life=14d", "preset=memory"]`` -> dict of text values, for
    ``core.engine.apply_settings`` (which validates the values). Names are checked here:
    the parameters, ``half_life`` and ``preset``; anything else is an error listing them."""
    from core.engine import PARAM_SPECS
    known = ["half_life", "preset"] + [n for n in PARAM_SPECS if n != "preset"]
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep:
            raise LatticeError(f"--set expects name=value, got {pair!r} (names: {', '.join(known)})")
        if name not in known:
            raise LatticeError(f"--set {name}: unknown setting; known: {', '.join(known)}")
        if name in out:
            raise LatticeError(f"--set {name} given twice; give each setting once")
        out[name] = value.strip()
    return out


def progress_bar(args: argparse.Namespace, label: str) -> ProgressBar | None:
    """A progress bar on stderr; none with --json, so that the output is the JSON alone."""
    return None if getattr(args, "json", False) else ProgressBar(label, stream=sys.stderr)


def batch_progress(bar: ProgressBar | None) -> Callable[[int, int], None] | None:
    """The store's ``progress(done, total)`` callback, drawn on ``bar`` (None without a bar)."""
    return (lambda done, total: bar.update(done / total if total else 1.0)) if bar else None


@contextmanager
def store_progress(args: argparse.Namespace, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """``with store_progress(args, "embedding") as progress: store.x(..., progress=progress)``; closes the bar."""
    bar = progress_bar(args, label)
    try:
        yield batch_progress(bar)
    finally:
        if bar:
            bar.close()
