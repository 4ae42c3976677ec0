"""``python -m core reflect "question"``: ask a stored lattice, stream the answer.

The reflection goes through the same :class:`core.service.workbench.Workbench` as the app:
the lattice is loaded from the store, the used gems re-cohere and co-used gems are
entangled there, and the reflection record is stored.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from core.access import SYSTEM
from core.cli.common import add_json_and_handler, clean, emit, open_store, say

DEMO_NAME = "demo"  # core.service.DEMO_NAME, not imported here: `--help` must not load the service stack


def record_json(record, store, lattice: str) -> dict[str, Any]:
    """The reflection record as a JSON-ready dict, each gem with its ``id`` and ``title``.

    Gems stay best first (the ranking's order) with every score term; titles come from
    the store's gem texts (an untitled gem gets the first line of its content).
    """
    data = record.to_dict()
    ids = [g["gem_id"] for g in data["gems"]]
    titles: dict[Any, str] = {}
    if ids:
        df = store.gem_texts(lattice, ids)
        for gid, title, content in zip(df["id"], df["title"], df["content"]):
            title = str(title or "").strip()
            if not title:
                title = str(content or "").strip().splitlines()[0][:80] if str(content or "").strip() else ""
            titles[gid] = title
    data["gems"] = [{"id": g["gem_id"], "title": titles.get(g["gem_id"], ""), **g} for g in data["gems"]]
    return data


def cmd_reflect(args: argparse.Namespace) -> int:
    from core.router import build_router
    from core.service import RateLimits, Workbench, ensure_demo
    router = build_router(args.providers)  # validates the provider names before the store is opened
    with open_store() as store:
        if args.lattice == DEMO_NAME:
            ensure_demo(store)
        workbench = Workbench(store, router=router, rate_limits=RateLimits.from_env(server=False))  # one process
        reflection = workbench.reflect(args.lattice, args.question, SYSTEM, session_id="cli")
        if args.json:
            record = reflection.result()
            emit(args, record_json(record, store, args.lattice), record.answer)
            return 0
        for chunk in reflection:
            sys.stdout.write(clean(chunk))
            sys.stdout.flush()
        sys.stdout.write("\n")
    record = reflection.record
    say(f"-- {record.provider or 'no provider'} ({record.model or '-'}), {record.latency_s:.2f} s, "
          f"{len([g for g in record.gems if g['included']])} gems used", file=sys.stderr)
    for attempt in record.trace:
        if attempt["outcome"] != "ok":
            say(f"   {attempt['provider']}: {attempt['outcome']} {attempt['detail']}".rstrip(), file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reflect", help="ask the lattice a question; streams the answer",
                       description="Retrieve the gems that resonate with QUESTION, answer from them "
                                   "(OpenAI -> Anthropic -> offline extractive), and update the lattice.")
    p.add_argument("question", help="the question to reflect on")
    p.add_argument("--lattice", default=DEMO_NAME, help="lattice name (default: demo)")
    p.add_argument("--providers", default=None,
                   help="comma-separated provider order (default: LATTICE_LLM_ORDER or openai,anthropic,offline)")
    add_json_and_handler(p, cmd_reflect, "the reflection record")
