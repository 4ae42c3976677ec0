#!/usr/bin/env python3
"""Render deploy/nginx.conf.template for N workbench nodes.

    python scripts/render-nginx.py --listen 8080 --node a=127.0.0.1:8501 --node b=127.0.0.1:8502 \
        --run-dir /tmp/lattice-nginx > /tmp/lattice-nginx/nginx.conf
    nginx -c /tmp/lattice-nginx/nginx.conf
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf.template"


def render(listen: str, nodes: dict[str, str], run_dir: str, daemon: bool = True) -> str:
    if not nodes:
        raise ValueError("at least one --node name=host:port is needed")
    for name in nodes:
        if not re.fullmatch(r"[a-z0-9]+", name):
            raise ValueError(f"node name {name!r}: use lowercase letters and digits")
    upstreams = "\n".join(f"    upstream node_{n} {{ server {addr}; }}" for n, addr in nodes.items())
    share = 100.0 / len(nodes)
    names = list(nodes)
    split = "\n".join(f"        {share:.2f}% {n};" for n in names[:-1]) + f"\n        * {names[-1]};"
    known = "\n".join(f"        {n} {n};" for n in names)
    # only ${...} placeholders of ours are filled; nginx's own $variables stay
    fields = dict(listen=listen, run_dir=run_dir, daemon="on" if daemon else "off",
                  upstreams=upstreams, split=split, known_nodes=known)
    text = TEMPLATE.read_text()
    return re.sub(r"\$\{(\w+)\}", lambda m: fields.get(m.group(1), m.group(0)), text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True, help="port (or addr:port) nginx listens on")
    ap.add_argument("--node", action="append", default=[], metavar="NAME=HOST:PORT", help="a workbench node")
    ap.add_argument("--run-dir", required=True, help="folder for pid, logs and temp files")
    ap.add_argument("--foreground", action="store_true", help="daemon off (for supervisors)")
    args = ap.parse_args(argv)
    try:
        nodes = dict(n.split("=", 1) for n in args.node)
        Path(args.run_dir).mkdir(parents=True, exist_ok=True)
        sys.stdout.write(render(args.listen, nodes, args.run_dir, daemon=not args.foreground))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
