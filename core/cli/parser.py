"""The command line's parser and entry point: every command module's ``register`` is called here.

A command's handler takes the parsed args and returns an exit code. User errors
(``LatticeError``) print one line to stderr and exit 2; ``--json`` prints data as JSON on stdout.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from core.cli import (api_keys, engine, evaluate, fading, mcp, pitr, reflect, repair, search, security, serve, store,
                      sweep, users)
from core.cli.common import say
from core.errors import LatticeError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Gem Lattice Workbench: simulate, store and query a lattice of decaying knowledge gems.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    engine.register(sub)    # demo, simulate, bench
    reflect.register(sub)   # reflect
    store.register(sub)     # db, import, export, backup, restore, log, lattices
    security.register(sub)  # keys, reembed, audit
    api_keys.register(sub)  # apikeys create | list | revoke (the API's program keys)
    users.register(sub)     # users add-user | hash
    repair.register(sub)    # repair (damaged gem state)
    evaluate.register(sub)  # eval (retrieval quality on a question set)
    fading.register(sub)    # fading (gems that fall below the threshold soon)
    search.register(sub)    # search (the ranking, every score term; read-only)
    sweep.register(sub)     # sweep (retrieval outcomes or lattice statistics over a grid)
    serve.register(sub)     # serve (the REST API)
    mcp.register(sub)       # mcp (the MCP server for agents, over stdio)
    pitr.register(sub)      # pitr (PostgreSQL point-in-time recovery into a new data directory)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # --help and usage errors exit here, before anything heavy is imported
    from core.monitoring import configure_logging
    configure_logging("WARNING")
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handling below, not at exit
        return code
    except LatticeError as exc:
        say(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
