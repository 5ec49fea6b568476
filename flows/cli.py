"""Command line for the ``vr-em`` flow.

    python -m flows.vr_em [--profile NAME] [--params params.yaml] [--set key=value ...] [--seeds 0 1 2] [--plan]

``--set`` takes dotted keys of the profile (``--set em.rounds=1 --set sampling.traces_per_question=8``), values
parsed as YAML. ``--seeds`` runs the flow once per seed and prints mean and spread per method and round.
A user error (a bad config, a missing path, a malformed dataset row: any ``varreason.config.UserError``) prints
one ``error:`` line and exits 2, without a traceback; the config, the machine (preflight) and a Bespoke dataset
are checked before Prefect starts, so these fail in seconds. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from varreason.config import ConfigError, UserError, load_config


def _parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set em.rounds=2")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    p = argparse.ArgumentParser(prog="python -m flows.vr_em", description=__doc__.split("\n")[1])
    p.add_argument("--profile", default=None, help="profile in params.yaml (default: its default_profile)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="run once per seed and summarise")
    p.add_argument("--plan", action="store_true", help="print every task of one round (inputs, GPUs, estimated "
                   "tokens, artifact) and exit without running anything")
    args = p.parse_args(argv)
    try:
        return _run(args)
    except UserError as exc:
        msg = " ".join(str(exc).split())  # one line, whatever the raiser wrote
        print(f"error: {msg}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    overrides = _parse_sets(args.sets)
    cfg = load_config(args.params, args.profile, overrides)  # fail fast, before Prefect starts
    if args.plan:
        from varreason.plan import format_plan, plan_round

        print(format_plan(cfg, plan_round(cfg)))
        return 0
    from varreason.preflight import check, check_data

    check(cfg)  # the flow checks again; here a missing GPU, model or dataset fails before Prefect starts
    check_data(cfg)
    from flows.vr_em import vr_em

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
