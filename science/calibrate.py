"""pi_theta0's held-out accuracy per seed for a profile, without the EM rounds (profile calibration).

    OMP_NUM_THREADS=1 python -m science.calibrate --profile sci --seeds 0 1 2 3 [--set key=value ...]

Runs the recipe's own steps (``varreason.recipe.graph``, ``varreason.steps.run_step``) that the SFT-only
evaluation depends on: task data, backbone, reasoner seed set, pi_theta0, evaluation, with the flow's keys on
the profile's artifact store, so a later ``vr-em`` run reuses every artifact (and a store the flow filled
answers at once). Prints one line per seed: accuracy (avg@n), pass@k, wall seconds. Used to check that a
profile keeps pi_theta0 in the 15-40% range the EM needs (docs/science.md).
"""

from __future__ import annotations

import argparse
import time

import yaml

from varreason.config import ExperimentConfig, load_config


def sft_metrics(c: ExperimentConfig, progress: bool = False) -> dict:
    """The SFT-only evaluation's metrics.json for config ``c``, running only the steps it depends on."""
    from varreason.io import read_json
    from varreason.recipe import graph
    from varreason.steps import run_step

    nodes = {n.run: n for n in graph(c)}
    target = next(n for n in nodes.values() if n.step == "evaluate" and n.method == "sft")
    needed, todo = set(), [target.run]
    while todo:
        name = todo.pop()
        needed.add(name)
        todo += [u for u in nodes[name].inputs.values() if u and u not in needed]
    refs = {}
    for n in nodes.values():  # graph order: every input before its consumer
        if n.run in needed:
            inputs = {r: refs[u] if u else None for r, u in n.inputs.items()}
            refs[n.run] = run_step(n.step, c, inputs, label=n.run, progress=progress, **n.ctx)
    return read_json(refs[target.run].verify() / "metrics.json")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m science.calibrate")
    p.add_argument("--profile", default="sci")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    sets = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.sets)}
    for seed in args.seeds:
        c = load_config(args.params, args.profile, {**sets, "seed": seed})
        t0 = time.perf_counter()
        m = sft_metrics(c)
        ks = " ".join(f"pass@{k} {m[f'pass@{k}']:.3f}" for k in c.eval.pass_k)
        print(f"profile {c.profile} seed {seed}: pi_theta0 acc {m['accuracy']:.4f} {ks} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
