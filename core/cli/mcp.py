"""``python -m core mcp [--lattice NAME]``: the MCP server for agents over stdio (an agent starts it).

The same tools and resources as ``/mcp`` of the API (core.api.mcp_server: remember, search,
reflect, forget; gems as resources) on the store of ``LATTICE_DATABASE_URL`` (default
data/lattice.db), the demo lattice created if missing. There is no bearer token on stdio, so
the environment says whose permissions apply (checked at start and at every call):
``LATTICE_MCP_API_KEY`` (an API key: its role) or ``LATTICE_MCP_USER`` (a user of the app: its
role; the demo users with ``LATTICE_DEMO=1``). stdout carries the protocol only: messages go to
stderr.
"""
from __future__ import annotations

import argparse
import os
import sys

from core.cli.common import say


def cmd_mcp(args: argparse.Namespace) -> int:
    from core.api import API_VERSION, build_mcp_server, stdio_actor
    from core.service import Workbench, ensure_demo
    from core.store import Store

    store = Store.open()
    try:
        actor = stdio_actor(store)  # a missing or wrong setting: one line on stderr, exit 2
        if ensure_demo(store):
            say("created the demo lattice 'demo'", file=sys.stderr)
        server = build_mcp_server(Workbench(store), actor=actor, lattice=args.lattice, version=API_VERSION)
        say(f"Gem Lattice Workbench MCP server on stdio, acting as {actor().name!r} ({actor().role.value}); "
            f"default lattice {args.lattice or os.environ.get('LATTICE_MCP_LATTICE') or 'demo'!r}", file=sys.stderr)
        server.run("stdio")  # until the agent closes stdin
    finally:
        store.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mcp", help="serve the MCP tools (remember, search, reflect, forget) over stdio for an agent",
                       description="Serve the MCP server over stdio on the store of LATTICE_DATABASE_URL. Set "
                                   "LATTICE_MCP_USER (a user of the app) or LATTICE_MCP_API_KEY (an API key) to "
                                   "say whose permissions apply. Over HTTP it is at /mcp of `python -m core serve`.")
    p.add_argument("--lattice", default=None,
                   help="the lattice a tool uses when the call names none (default LATTICE_MCP_LATTICE or demo)")
    p.set_defaults(handler=cmd_mcp)
