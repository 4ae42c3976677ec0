"""``python -m core reflect "question"``: ask the lattice, stream the answer.

For now the lattice is built from the shipped demo files and embedded with the
chosen embedder (the store will supply stored lattices and embeddings).
"""
from __future__ import annotations

import argparse
import sys

from .access import SYSTEM
from .cli import emit
from .demo import DEMO_NAME, load_demo_lattice
from .embedders import DEFAULT_EMBEDDER, get_embedder
from .errors import LatticeError
from .knowledge import reembed
from .progress import ProgressBar
from .reflection import ReflectionEngine
from .router import build_router


def gem_texts(gems) -> list[str]:
    """The text of each demo gem (its ``content``; ``text`` in other exports)."""
    for column in ("content", "text"):
        if column in gems.columns:
            return gems[column].fillna("").astype(str).tolist()
    raise LatticeError("the gem records have no 'content' or 'text' column")


def cmd_reflect(args: argparse.Namespace) -> int:
    if args.lattice != DEMO_NAME:
        raise LatticeError(f"unknown lattice {args.lattice!r}; available: {DEMO_NAME}")
    lattice, gems = load_demo_lattice()
    embedder = get_embedder(args.embedder)
    texts = gem_texts(gems)
    bar = None if args.json else ProgressBar(f"embed ({embedder.name})", stream=sys.stderr)
    embeddings = reembed(texts, embedder, progress=(lambda d, t: bar.update(d / t if t else 1.0)) if bar else None)
    if bar:
        bar.close()
    engine = ReflectionEngine(lattice, texts, embeddings, embedder, router=build_router(args.providers),
                              lattice_name=args.lattice)
    reflection = engine.reflect(args.question, SYSTEM, session_id="cli")
    if args.json:
        record = reflection.result()
        emit(args, record.to_dict(), record.answer)
        return 0
    for chunk in reflection:
        sys.stdout.write(chunk)
        sys.stdout.flush()
    sys.stdout.write("\n")
    record = reflection.record
    print(f"-- {record.provider or 'no provider'} ({record.model or '-'}), {record.latency_s:.2f} s, "
          f"{len([g for g in record.gems if g['included']])} gems used", file=sys.stderr)
    for attempt in record.trace:
        if attempt["outcome"] != "ok":
            print(f"   {attempt['provider']}: {attempt['outcome']} {attempt['detail']}".rstrip(), file=sys.stderr)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("reflect", help="ask the lattice a question; streams the answer",
                              description="Retrieve the gems that resonate with QUESTION, answer from them "
                                          "(OpenAI -> Anthropic -> offline extractive), and update the lattice.")
    p.add_argument("question", help="the question to reflect on")
    p.add_argument("--lattice", default=DEMO_NAME, help="lattice name (default: demo)")
    p.add_argument("--embedder", default=DEFAULT_EMBEDDER, help=f"embedder (default: {DEFAULT_EMBEDDER})")
    p.add_argument("--providers", default=None,
                   help="comma-separated provider order (default: LATTICE_LLM_ORDER or openai,anthropic,offline)")
    p.add_argument("--json", action="store_true", help="print the reflection record as JSON")
    p.set_defaults(handler=cmd_reflect)
