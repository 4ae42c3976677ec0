"""Engine commands: ``demo``, ``simulate``, ``bench``."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .cli import emit
from .demo import load_demo_lattice
from .errors import LatticeError
from .params import PARAM_SPECS, LatticeParams
from .progress import ProgressBar
from .trajectory import simulate


def parse_settings(pairs: list[str] | None) -> dict[str, str]:
    """``["K=0.5", "lambda_=2"]`` -> dict; the parameter object validates the values."""
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise LatticeError(f"--set expects name=value, got {pair!r} (parameters: {', '.join(PARAM_SPECS)})")
        out[name.strip()] = value.strip()
    return out


def cmd_demo(args: argparse.Namespace) -> int:
    lattice, gems = load_demo_lattice()
    s = lattice.summary()
    emit(args, {"lattice": "demo", **s, "topics": sorted({t[0] for t in gems["tags"] if t})},
         f"demo lattice: {s['gems']} gems, {s['entanglements']} entanglements, "
         f"mean coherence {s['mean_coherence']:.3f}, R = {s['R']:.3f}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.lattice != "demo":
        raise LatticeError(f"unknown lattice {args.lattice!r}; available: demo")
    params = LatticeParams.from_dict(parse_settings(args.set))
    lattice, _ = load_demo_lattice(params)
    bar = None if args.json else ProgressBar("simulate", stream=sys.stderr)
    traj = simulate(lattice, args.t, dt=args.dt, progress=bar.update if bar else None)
    if bar:
        bar.close()
    first, last = traj.series.iloc[0], traj.series.iloc[-1]
    data = {
        "lattice": args.lattice, "t_start": float(first.time), "t_end": float(last.time),
        "steps": len(traj.series) - 1, "params": params.to_dict(),
        "start": {k: float(first[k]) for k in ("R", "psi", "mean_coherence", "mean_uncertainty")},
        "end": {k: float(last[k]) for k in ("R", "psi", "mean_coherence", "mean_uncertainty")},
    }
    emit(args, data,
         f"{args.lattice}: t {data['t_start']:.3g} -> {data['t_end']:.3g} in {data['steps']} steps; "
         f"mean coherence {data['start']['mean_coherence']:.4f} -> {data['end']['mean_coherence']:.4f}; "
         f"R {data['start']['R']:.4f} -> {data['end']['R']:.4f}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        bench = importlib.import_module("benchmarks.engine")
    except ModuleNotFoundError:
        raise LatticeError(f"benchmarks not found under {root / 'benchmarks'}; run from a full checkout") from None
    results = bench.run_all(quick=args.quick, only=args.only, log=None if args.json else print)
    emit(args, results, "")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build the shipped demo lattice and print its summary")
    p.add_argument("--if-missing", action="store_true", help="do nothing if the demo lattice already exists")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("simulate", help="evolve a lattice for a time span and report its coherence and order")
    p.add_argument("--lattice", default="demo", help="lattice name (default: demo)")
    p.add_argument("--t", type=float, required=True, help="time span to simulate, in lattice time units")
    p.add_argument("--dt", type=float, default=None, help="step in lattice time units (default: the dt parameter)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a parameter, e.g. --set K=0.5")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser("bench", help="run the engine benchmarks (ratios measured in one run)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    p.add_argument("--only", action="append", help="run only the named benchmark(s)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=cmd_bench)
