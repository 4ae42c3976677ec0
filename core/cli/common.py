"""What every command shares: ``--json`` output, the store, ``--set`` pairs, progress bars."""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from core.cli.progress import ProgressBar
from core.engine import PARAM_SPECS
from core.errors import LatticeError
from core.store import Store


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON when ``--json`` was given, else the human ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


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
    return Store.open()


def parse_settings(pairs: list[str] | None) -> dict[str, str]:
    """``["K=0.5", "lambda_=2"]`` -> dict; the parameter object validates the values."""
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise LatticeError(f"--set expects name=value, got {pair!r} (parameters: {', '.join(PARAM_SPECS)})")
        out[name.strip()] = value.strip()
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
