#!/usr/bin/env python3
"""Render deploy/nginx.conf.template for N app nodes and M API nodes.

    python scripts/render-nginx.py --listen 8080 --node a=127.0.0.1:8501 --node b=127.0.0.1:8502 \
        --api-node a=127.0.0.1:8001 --api-node b=127.0.0.1:8002 \
        --run-dir /tmp/lattice-nginx > /tmp/lattice-nginx/nginx.conf
    nginx -c /tmp/lattice-nginx/nginx.conf

App nodes (``--node``, ``streamlit run app.py``) get every path but the API's, sticky by the
``lattice_node`` cookie; API nodes (``--api-node``, ``python -m core serve``) get ``/v1/``,
``/.well-known/``, ``/mcp``, ``/docs`` and ``/openapi.json``, round robin. Either kind may be
left out (an app-only or an API-only proxy), not both. The template's ``# @app-begin`` ..
``# @app-end`` sections are kept only with app nodes, ``@no-app`` ones only without, and
``@api`` ones only with API nodes.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf.template"
DEFAULT_API_MAX_BODY = "100m"  # above the API's own default upload limit (64 MB), which answers in JSON
ADDRESS = re.compile(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}|unix:/[^\s;{}]+")


def _sections(text: str, keep: dict[str, bool]) -> str:
    """Drop the ``# @<name>-begin`` .. ``# @<name>-end`` blocks whose name is not kept; of kept
    blocks, drop only the marker lines."""
    for name, kept in keep.items():
        block = re.compile(rf"^[ \t]*# @{name}-begin[^\n]*\n(.*?)^[ \t]*# @{name}-end[^\n]*\n", re.S | re.M)
        text = block.sub((lambda m: m.group(1)) if kept else "", text)
    return text


def _checked(nodes: dict[str, str], flag: str) -> None:
    for name, addr in nodes.items():
        if not re.fullmatch(r"[a-z0-9]+", name):
            raise ValueError(f"{flag} {name}: use lowercase letters and digits for the name")
        if not ADDRESS.fullmatch(addr):
            raise ValueError(f"{flag} {name}={addr}: give host:port (127.0.0.1:8001) or unix:/path")


def render(listen: str, nodes: dict[str, str], run_dir: str, daemon: bool = True,
           api_nodes: dict[str, str] | None = None, api_max_body: str = DEFAULT_API_MAX_BODY) -> str:
    """The nginx configuration text.

    Parameters
    ----------
    listen : str
        Port or addr:port nginx listens on.
    nodes : dict
        App nodes, name -> host:port (sticky by cookie).
    run_dir : str
        Folder for the pid file, logs (access.log: which node served each request) and temp files.
    api_nodes : dict, optional
        API nodes, name -> host:port (round robin).
    api_max_body : str
        nginx's ``client_max_body_size`` for API requests (``100m``; the API's limits answer first).
    """
    api_nodes = dict(api_nodes or {})
    if not nodes and not api_nodes:
        raise ValueError("at least one --node name=host:port (an app node) or --api-node name=host:port is needed")
    _checked(nodes, "--node")
    _checked(api_nodes, "--api-node")
    if not re.fullmatch(r"\d+[kKmMgG]?", api_max_body):
        raise ValueError(f"--api-max-body {api_max_body!r}: give a size such as 100m, 512k or 0 (no limit)")
    names = list(nodes)
    fields = dict(listen=listen, run_dir=run_dir, daemon="on" if daemon else "off", api_max_body=api_max_body,
                  api_servers="\n".join(f"        server {addr};  # {n}" for n, addr in api_nodes.items()))
    if nodes:
        share = 100.0 / len(nodes)
        fields.update(
            upstreams="\n".join(f"    upstream node_{n} {{ server {addr}; }}" for n, addr in nodes.items()),
            split="\n".join(f"        {share:.2f}% {n};" for n in names[:-1]) + f"\n        * {names[-1]};",
            known_nodes="\n".join(f"        {n} {n};" for n in names))
    text = _sections(TEMPLATE.read_text(), {"app": bool(nodes), "no-app": not nodes, "api": bool(api_nodes)})
    # only ${...} placeholders of ours are filled; nginx's own $variables stay
    return re.sub(r"\$\{(\w+)\}", lambda m: fields.get(m.group(1), m.group(0)), text)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        if "=" not in value:
            raise ValueError(f"{flag} {value!r}: give NAME=HOST:PORT, e.g. {flag} a=127.0.0.1:8001")
        name, addr = value.split("=", 1)
        if name in pairs:
            raise ValueError(f"{flag} {name}: the name is given twice")
        pairs[name] = addr
    return pairs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True, help="port (or addr:port) nginx listens on")
    ap.add_argument("--node", action="append", default=[], metavar="NAME=HOST:PORT",
                    help="an app node (streamlit run app.py)")
    ap.add_argument("--api-node", action="append", default=[], metavar="NAME=HOST:PORT",
                    help="an API node (python -m core serve)")
    ap.add_argument("--api-max-body", default=DEFAULT_API_MAX_BODY,
                    help=f"nginx's body limit for API requests (default {DEFAULT_API_MAX_BODY})")
    ap.add_argument("--run-dir", required=True, help="folder for pid, logs and temp files")
    ap.add_argument("--foreground", action="store_true", help="daemon off (for supervisors)")
    args = ap.parse_args(argv)
    try:
        nodes, api_nodes = _pairs(args.node, "--node"), _pairs(args.api_node, "--api-node")
        text = render(args.listen, nodes, args.run_dir, daemon=not args.foreground, api_nodes=api_nodes,
                      api_max_body=args.api_max_body)
        Path(args.run_dir).mkdir(parents=True, exist_ok=True)
        sys.stdout.write(text)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
