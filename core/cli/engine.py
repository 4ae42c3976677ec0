"""Engine commands: ``demo``, ``simulate`` (both on the store: core.store), ``bench``."""
from __future__ import annotations

import argparse
import importlib
import math

from core.access import SYSTEM
from core.cli.common import (SETTING_NAMES_HELP, add_json_and_handler, emit, open_store, parse_settings,
                             progress_bar, say)
from core.errors import LatticeError
from core.paths import ROOT


def cmd_demo(args: argparse.Namespace) -> int:
    from core.service import DEMO_NAME, ensure_demo
    rebuild = bool(args.reset or args.force)
    if rebuild and args.if_missing:
        raise LatticeError("--if-missing keeps an existing demo and --reset/--force rebuilds it; give one of them")
    with open_store() as store:
        existed = store.exists(DEMO_NAME)
        created = ensure_demo(store, rebuild=rebuild)  # a reset is audited (demo.reset)
        loaded = store.load(DEMO_NAME)
        tags = store.gem_texts(DEMO_NAME)["tags"]
    s, p = loaded.lattice.summary(), loaded.info.params
    if created and existed:
        verb = "reset: rebuilt from the shipped files (its changes are undone; the log keeps them and a restore entry)"
    elif created:
        verb = "built"
    elif args.if_missing:
        verb = "already present"
    else:
        verb = "already present, not overwritten (python -m core demo --reset rebuilds it from the shipped files)"
    emit(args, {"lattice": DEMO_NAME, "created": created, "reset": created and existed, "version": loaded.version,
                **s, "preset": p.preset, **half_life_fields(p),
                "topics": sorted({t[0] for t in tags if t})},
         f"demo lattice {verb}: {s['gems']} gems, {s['entanglements']} entanglements, "
         f"mean coherence {s['mean_coherence']:.3f}, R = {s['R']:.3f}, t = {s['t']:g} {p.time_unit}s; "
         f"preset {p.preset}, half-life {p.half_life_text()} at E = 1")
    return 0


def half_life_fields(params) -> dict:
    """The half-life at E = 1 for --json: in lattice time units (None: never) and humanised."""
    h = params.half_life()
    return {"half_life": h if math.isfinite(h) else None, "half_life_text": params.half_life_text()}


def cmd_simulate(args: argparse.Namespace) -> int:
    from core.engine import LatticeParams, apply_settings
    from core.service import ensure_demo
    settings = parse_settings(args.set)
    apply_settings(LatticeParams(), settings)  # bad values fail before the database is touched
    with open_store() as store:
        if args.lattice == "demo":
            ensure_demo(store)  # the demo works out of the box
        params = apply_settings(store.info(args.lattice).params, settings) if settings else None
        bar = progress_bar(args, "simulate")
        traj, info = store.simulate(args.lattice, args.t, SYSTEM, dt=args.dt, params=params,
                                    progress=bar.update if bar else None)
    if bar:
        bar.close()
    first, last = traj.series.iloc[0], traj.series.iloc[-1]
    final = traj.final.params
    data = {
        "lattice": args.lattice, "t_start": float(first.time), "t_end": float(last.time),
        "steps": len(traj.series) - 1, "params": final.to_dict(), "version": info.version,
        "preset": final.preset, **half_life_fields(final),
        "start": {k: float(first[k]) for k in ("R", "psi", "mean_coherence", "mean_uncertainty")},
        "end": {k: float(last[k]) for k in ("R", "psi", "mean_coherence", "mean_uncertainty")},
    }
    unit = final.time_unit
    emit(args, data,
         f"{args.lattice}: t {data['t_start']:.3g} -> {data['t_end']:.3g} {unit}s in {data['steps']} steps (saved, "
         f"version {info.version}); half-life {final.half_life_text()} at E = 1 (preset {final.preset}); "
         f"mean coherence {data['start']['mean_coherence']:.4f} -> {data['end']['mean_coherence']:.4f}; "
         f"R {data['start']['R']:.4f} -> {data['end']['R']:.4f}")
    return 0


SUITES: dict[str, str] = {
    "engine": "ratios vs the seed and numpy floors",
    "store": "import/load/save on SQLite and PostgreSQL",
    "knowledge": "resonance, cache, offline reflection",
    "startup": "`--help` and a reflect on 100 gems vs `python -c pass`",
    "history": "log replay at 100k gems",
    "scale": "the app's paths vs their floors at 1e5-1e6 gems; --json: each row's ratio",
    "api_search": "POST /v1/lattices/{name}/search over 100k gems through real HTTP, server-side p50/p95 and "
                  "the ratio to the float32 matrix-vector floor (--quick: 10k)",
    "api_load": "50 concurrent clients for 20 s against two API nodes behind nginx (PostgreSQL, Redis; "
                "--quick: 10 for 5 s)",
}
"""The benchmark suites ``bench --suite`` runs: each a module ``benchmarks.<name>`` with ``run_all``."""


def cmd_bench(args: argparse.Namespace) -> int:
    try:  # the package benchmarks is installed with core (pyproject.toml), so this works from any directory
        bench = importlib.import_module(f"benchmarks.{args.suite}")
        from benchmarks.store import Unavailable
    except ModuleNotFoundError:
        raise LatticeError(f"benchmarks not found under {ROOT / 'benchmarks'}; run from a full checkout") from None
    try:
        results = bench.run_all(quick=args.quick, only=args.only, log=None if args.json else say)
    except Unavailable as exc:  # a service the suite needs (PostgreSQL, Redis, nginx) is not here
        raise LatticeError(f"the {args.suite} benchmarks cannot run here: {exc}") from None
    emit(args, results, "")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="load the shipped demo lattice into the store and print its summary "
                                    "(an existing demo is kept unless --reset)")
    p.add_argument("--if-missing", action="store_true", help="do nothing if the demo lattice already exists")
    p.add_argument("--reset", action="store_true",
                   help="rebuild the demo from the shipped files, throwing away its changes, log and reflections "
                        "(audited as demo.reset)")
    p.add_argument("--force", action="store_true", help="the same as --reset")
    add_json_and_handler(p, cmd_demo, "the summary")

    p = sub.add_parser("simulate", help="evolve a stored lattice for a time span (advances its clock, saves the state)")
    p.add_argument("--lattice", default="demo", help="lattice name (default: demo)")
    p.add_argument("--t", type=float, required=True, help="time span to advance, in lattice time units")
    p.add_argument("--dt", type=float, default=None, help="step in lattice time units (default: the dt parameter)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="override a setting for this run (logged), e.g. --set K=0.5 --set half_life=14d: "
                        + SETTING_NAMES_HELP)
    add_json_and_handler(p, cmd_simulate)

    p = sub.add_parser("bench", help=f"run the benchmarks (engine by default; --suite {'|'.join(list(SUITES)[1:])})")
    p.add_argument("--suite", choices=tuple(SUITES), default="engine",
                   help=", ".join(f"{name} ({what})" for name, what in SUITES.items()).replace("%", "%%"))
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    p.add_argument("--only", action="append", help="run only the named benchmark(s)")
    add_json_and_handler(p, cmd_bench, "the results")
