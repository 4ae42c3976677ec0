"""``python -m core`` / ``lattice``: the workbench's command line (one module per group of commands).

Each command module (engine, reflect, store, security, users) has ``register(subparsers)``, called
by :func:`build_parser`; the helpers they share are in ``core.cli.common``.
"""
from core.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
