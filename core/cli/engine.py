"""Engine commands: ``demo``, ``simulate`` (both on the store: core.store), ``bench``."""
from __future__ import annotations

import argparse
import importlib

from core.access import SYSTEM
from core.cli.common import add_json_and_handler, emit, open_store, parse_settings, progress_bar, say
from core.errors import LatticeError
from core.paths import ROOT


def cmd_demo(args: argparse.Namespace) -> int:
    from core.service import ensure_demo
    with open_store() as store:
        created = ensure_demo(store, rebuild=not args.if_missing)
        loaded = store.load("demo")
        tags = store.gem_texts("demo")["tags"]
    s = loaded.lattice.summary()
    verb = "built" if created else "already present"
    emit(args, {"lattice": "demo", "created": created, "version": loaded.version, **s,
                "topics": sorted({t[0] for t in tags if t})},
         f"demo lattice {verb}: {s['gems']} gems, {s['entanglements']} entanglements, "
         f"mean coherence {s['mean_coherence']:.3f}, R = {s['R']:.3f}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from core.engine import LatticeParams
    from core.service import ensure_demo
    settings = parse_settings(args.set)
    LatticeParams.from_dict(settings)  # bad values fail before the database is touched
    with open_store() as store:
        if args.lattice == "demo":
            ensure_demo(store)  # the demo works out of the box
        params = store.info(args.lattice).params.replace(**settings) if settings else None
        bar = progress_bar(args, "simulate")
        traj, info = store.simulate(args.lattice, args.t, SYSTEM, dt=args.dt, params=params,
                                    progress=bar.update if bar else None)
    if bar:
        bar.close()
    first, last = traj.series.iloc[0], traj.series.iloc[-1]
    data = {
        "lattice": args.lattice, "t_start": float(first.time), "t_end": float(last.time),
        "steps": len(traj.series) - 1, "params": traj.final.params.to_dict(), "version": info.version,
        "start": {k: float(first[k]) for k in ("R", "psi", "mean_coherence", "mean_uncertainty")},
        "end": {k: float(last[k]) for k in ("R", "psi", "mean_coherence", "mean_uncertainty")},
    }
    emit(args, data,
         f"{args.lattice}: t {data['t_start']:.3g} -> {data['t_end']:.3g} in {data['steps']} steps (saved, "
         f"version {info.version}); "
         f"mean coherence {data['start']['mean_coherence']:.4f} -> {data['end']['mean_coherence']:.4f}; "
         f"R {data['start']['R']:.4f} -> {data['end']['R']:.4f}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    try:  # the package benchmarks is installed with core (pyproject.toml), so this works from any directory
        bench = importlib.import_module(f"benchmarks.{args.suite}")
    except ModuleNotFoundError:
        raise LatticeError(f"benchmarks not found under {ROOT / 'benchmarks'}; run from a full checkout") from None
    results = bench.run_all(quick=args.quick, only=args.only, log=None if args.json else say)
    emit(args, results, "")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="load the shipped demo lattice into the store and print its summary")
    p.add_argument("--if-missing", action="store_true", help="do nothing if the demo lattice already exists")
    add_json_and_handler(p, cmd_demo, "the summary")

    p = sub.add_parser("simulate", help="evolve a stored lattice for a time span (advances its clock, saves the state)")
    p.add_argument("--lattice", default="demo", help="lattice name (default: demo)")
    p.add_argument("--t", type=float, required=True, help="time span to advance, in lattice time units")
    p.add_argument("--dt", type=float, default=None, help="step in lattice time units (default: the dt parameter)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a parameter for this run (logged), e.g. --set K=0.5")
    add_json_and_handler(p, cmd_simulate)

    p = sub.add_parser("bench", help="run the benchmarks (engine by default; --suite store|knowledge|startup|"
                                     "history|scale)")
    p.add_argument("--suite", choices=("engine", "store", "knowledge", "startup", "history", "scale"),
                   default="engine",
                   help="engine (ratios vs the seed and numpy floors), store (import/load/save on SQLite and "
                        "PostgreSQL), knowledge (resonance, cache, offline reflection), startup (`--help` and a "
                        "reflect on 100 gems vs `python -c pass`), history (log replay at 100k gems), scale (the "
                        "app's paths vs their floors at 1e5-1e6 gems; --json: each row's ratio)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    p.add_argument("--only", action="append", help="run only the named benchmark(s)")
    add_json_and_handler(p, cmd_bench, "the results")
