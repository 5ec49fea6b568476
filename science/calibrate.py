"""pi_theta0's held-out accuracy per seed for a profile, without the EM rounds (profile calibration).

    OMP_NUM_THREADS=1 python -m science.calibrate --profile sci --seeds 0 1 2 3 [--set key=value ...]

Runs the same pipeline calls as the ``vr-em`` flow up to the SFT-only evaluation (task data, backbone, seed
set, pi_theta0, evaluation) on the profile's artifact store, so a later flow run reuses every artifact, and
prints one line per seed: accuracy (avg@n), pass@k, wall seconds. Used to check that a profile keeps pi_theta0
in the 15-40% range the EM needs (docs/science.md).
"""

from __future__ import annotations

import argparse
import time

import yaml

from varreason.config import load_config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m science.calibrate")
    p.add_argument("--profile", default="sci")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    from varreason.io import read_json
    from varreason.pipeline import data, evaluate, train

    sets = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.sets)}
    for seed in args.seeds:
        c = load_config(args.params, args.profile, {**sets, "seed": seed})
        t0, root = time.perf_counter(), c.artifacts_dir
        task = data.build_task(c.data, c.prompt, c.seed, root)
        backbone = data.init_backbone(c.model, task, c.seed, root)
        seed_pi = data.build_seed_set(c.prompt, task, "reasoner", root)
        pi0 = train.train_model(c.train, c.model, backbone, [seed_pi], c.train.init_steps, c.seed, "pi0", root,
                                progress=False)
        ev = evaluate.evaluate(c.eval, c.sampling, c.model, c.prompt, pi0, task, c.seed, root, progress=False)
        m = read_json(ev.verify() / "metrics.json")
        ks = " ".join(f"pass@{k} {m[f'pass@{k}']:.3f}" for k in c.eval.pass_k)
        print(f"profile {c.profile} seed {seed}: pi_theta0 acc {m['accuracy']:.3f} {ks} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
