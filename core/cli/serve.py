"""``python -m core serve [--host H] [--port 8000]``: the REST API (OpenAPI at /docs) with uvicorn.

Embedded defaults, as ``make run``: the store of ``LATTICE_DATABASE_URL`` (default the SQLite file
data/lattice.db), the demo lattice created if missing, and the demo log-ins (admin, researcher,
viewer; the README's passwords) when ``LATTICE_DEMO=1`` (``make serve`` sets it unless told
``LATTICE_DEMO=0``); otherwise the users of the credentials file. Listens on this machine only
unless ``--host`` / ``LATTICE_BIND`` says otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys

from core.cli.common import say

DEFAULT_PORT = 8000


def cmd_serve(args: argparse.Namespace) -> int:
    from core.api import create_app, serve
    from core.auth import check_api_credentials, demo_mode, is_loopback
    from core.service import Workbench, ensure_demo
    from core.store import Store

    check_api_credentials()  # outside demo mode: a real credentials file without demo passwords
    store = Store.open()
    if ensure_demo(store):
        say("created the demo lattice 'demo'", file=sys.stderr)
    reach = "this machine only" if is_loopback(args.host) else "reachable from other machines"
    if demo_mode():
        say(f"demo mode (LATTICE_DEMO=1): the demo users log in with the README's passwords; {reach}",
            file=sys.stderr)
    say(f"Gem Lattice Workbench API on http://{args.host}:{args.port} (docs at /docs; {reach})", file=sys.stderr)
    app = create_app(Workbench(store))  # the app closes the store when the server stops
    serve(app, args.host, args.port, log_level=args.log_level)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the REST API (FastAPI + uvicorn; OpenAPI at /docs)",
                       description="Serve the REST API on the store of LATTICE_DATABASE_URL (default "
                                   "data/lattice.db), creating the demo lattice if missing.")
    p.add_argument("--host", default=os.environ.get("LATTICE_BIND") or "127.0.0.1",
                   help="address to listen on (default LATTICE_BIND or 127.0.0.1: this machine only; "
                        "0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="uvicorn's log level (default info)")
    p.set_defaults(handler=cmd_serve)
