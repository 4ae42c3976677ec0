"""``python -m core``: the command line of the workbench.

Each command module exposes ``register(subparsers)``; a command's handler takes the
parsed args and returns an exit code. User errors (``LatticeError``) print one line
to stderr and exit 2; ``--json`` prints data as JSON on stdout.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any, Sequence

from core.errors import LatticeError
from core.monitoring import configure_logging

# Modules that add commands; each defines register(subparsers).
COMMAND_MODULES = ["core.cli.engine_commands", "core.cli.reflect_commands", "core.cli.store_commands"]


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON when ``--json`` was given, else the human ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Gem Lattice Workbench: simulate, store and query a lattice of decaying knowledge gems.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging("WARNING")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except LatticeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
