"""Command line for the ``vr-em`` flow.

    python -m flows.vr_em [--profile NAME] [--params params.yaml] [--set key=value ...] [--seeds 0 1 2]
                          [--plan | --status]

``--set`` takes dotted keys of the profile (``--set em.rounds=1 --set sampling.traces_per_question=8``), values
parsed as YAML. ``--seeds`` runs the flow once per seed and prints mean and spread per method and round.
``--plan`` prints one round's tasks with their resources and token bounds; ``--status`` prints every step of the
run as cached or will-run with the reason (``varreason.status``); neither runs anything.
A user error (a bad config, a missing path, a malformed dataset row: any ``varreason.config.UserError``) prints
one ``error:`` line and exits 2, without a traceback; the config, the machine (preflight) and a Bespoke dataset
are checked before Prefect starts, so these fail in seconds. Anything else is a bug and keeps its traceback.
A run owns what it starts: every descendant process dies with it, even under ``kill -9``
(``varreason.procs``), and without ``PREFECT_API_URL`` it starts and stops its own ephemeral Prefect server
(``flows/server.py``; the server's output goes to ``$PREFECT_HOME/ephemeral-server.log``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from varreason.config import ConfigError, UserError, load_config, parse_value
from varreason.procs import adopt_descendants


def _parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set em.rounds=2")
        key, value = item.split("=", 1)
        if not key.strip():
            raise ConfigError(f"--set {item!r}: no key before '='; write --set em.rounds=2")
        out[key.strip()] = parse_value(key.strip(), value)
    return out


def main(argv: list[str] | None = None, load_flow=None) -> int:
    """``load_flow()`` returns the flow to run (default: ``flows.vr_em.vr_em``, imported by name only once the
    arguments and the config are valid, so a bad input fails in ~0.3 s without importing Prefect)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    p = argparse.ArgumentParser(prog="python -m flows.vr_em", description=__doc__.split("\n")[1])
    p.add_argument("--profile", default=None, help="profile in params.yaml (default: its default_profile)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="run once per seed and summarise")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--plan", action="store_true", help="print every task of one round (inputs, GPUs, estimated "
                      "tokens, artifact) and exit without running anything")
    what.add_argument("--status", action="store_true", help="print every step as cached or will-run, with the "
                      "reason and the cost of what will run, and exit without running anything")
    args = p.parse_args(argv)
    try:
        return _run(args, load_flow)
    except KeyboardInterrupt:
        if "flows.server" in sys.modules:
            sys.modules["flows.server"].interrupted()  # no wait at exit for task runs that will never finish
        raise
    except UserError as exc:
        msg = " ".join(str(exc).split())  # one line, whatever the raiser wrote
        print(f"error: {msg}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, load_flow) -> int:
    overrides = _parse_sets(args.sets)
    cfg = load_config(args.params, args.profile, overrides)  # fail fast, before Prefect starts
    _check_seeds(args.seeds)
    if args.plan:
        from varreason.plan import format_plan, plan_round

        print(format_plan(cfg, plan_round(cfg)))
        return 0
    if args.status:
        from varreason.status import format_status, status

        print(format_status(cfg, status(cfg)))
        return 0
    _preflight(cfg)
    start_services()
    vr_em = load_flow() if load_flow else importlib.import_module("flows.vr_em").vr_em
    if not args.seeds:
        vr_em(profile=cfg.profile, params_path=args.params, overrides=overrides)
        return 0
    from varreason.report import seed_summary

    runs = {}
    for s in args.seeds:
        o = {**overrides, "seed": s, "results_dir": f"{cfg.results_dir}/seed-{s}"}
        runs[s] = vr_em(profile=cfg.profile, params_path=args.params, overrides=o)
    print(seed_summary(runs, f"{cfg.results_dir}/seeds"))
    return 0


def start_services() -> str:
    """From here on every process this run starts dies with it, even under ``kill -9`` (varreason/procs.py);
    then the configured Prefect server must answer, or the run starts (and at exit stops) its own
    (flows/server.py). Returns the API URL in use."""
    adopt_descendants()
    from flows.server import connect

    return connect()


def _check_seeds(seeds: list[int] | None) -> None:
    if seeds and any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: seeds must be >= 0")
    if seeds and len(set(seeds)) < len(seeds):
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: a seed is given twice; list each seed once")


def _preflight(cfg) -> None:
    """Everything checkable before work starts: the machine (GPUs, model, dataset rows) and every path the run
    writes to or reads from (varreason.inputs), including Prefect's state directories from the environment."""
    from varreason.inputs import check_inputs, writable_dir
    from varreason.preflight import check, check_data

    check_inputs(cfg)  # first: a mistyped path is the more precise message than "cannot run on this machine"
    check(cfg)  # the flow checks again; here a missing GPU, model or dataset fails before Prefect starts
    check_data(cfg)
    for var in ("PREFECT_HOME", "PREFECT_LOCAL_STORAGE_PATH"):
        if os.environ.get(var):
            writable_dir(os.environ[var], var, f"set {var} to a writable directory")
