"""Re-grades real tiny-model outputs with the graders before and after the one-grader change (docs/evaluation.md).

Before (commit 737c5fb) the tiny task had two graders: rewards, RFT and the refresh used ``arith.grade`` on
``arith.extract_boxed`` (a regex box without nesting) of the parsed solution block, evaluation used
``eval.grader.grade_math`` (math_verify) on the whole response. Now both use ``grader.grade_arith``. This script
trains the ``tiny`` profile's pi_theta0 (the pipeline's own steps, cached under ``--root``), samples ``--n``
responses per question from it, and counts the outcomes that change. Run from the repository root:

    OMP_NUM_THREADS=1 python tests/varreason/eval/regrade_tiny.py --root /tmp/regrade-art
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

OLD_COMMIT = "737c5fb"


def old_module(path: str, name: str, tmp: Path):
    """``path`` as it was at ``OLD_COMMIT``, imported under ``name``."""
    src = subprocess.run(["git", "show", f"{OLD_COMMIT}:{path}"], check=True, capture_output=True, text=True,
                         timeout=60).stdout
    f = tmp / f"{name}.py"
    f.write_text(src)
    spec = importlib.util.spec_from_file_location(name, f)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default="/tmp/regrade-art", help="artifact store for the task and pi_theta0")
    ap.add_argument("--n", type=int, default=4, help="samples per question")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.7, 1.0])
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from varreason.backends.base import SamplingParams, stable_seed
    from varreason.config import load_config
    from varreason.eval.grader import grade_arith
    from varreason.pipeline.common import questions
    from varreason.pipeline.sample import grade, make_sampler
    from varreason.prompts import parse_response, reasoner_prompt
    from varreason.steps import run_step

    c = load_config(profile="tiny", overrides={"artifacts_dir": args.root})
    task = run_step("build-task", c, {}, progress=False)
    backbone = run_step("init-backbone", c, {"task": task}, progress=False)
    seed_set = run_step("build-seed-set", c, {"task": task}, progress=False, role="reasoner")
    pi0 = run_step("train-pi0", c, {"init": backbone, "set": seed_set}, label="train-pi0", progress=False)
    qs = questions(task)
    sampler = make_sampler(c, pi0, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        old_arith = old_module("varreason/arith.py", "old_arith", Path(tmp))
        old_grader = old_module("varreason/eval/grader.py", "old_grader", Path(tmp))
    counts: Counter = Counter()
    for temperature in args.temperatures:
        params = SamplingParams(n=args.n, temperature=temperature, top_p=1.0, max_new_tokens=c.eval.max_new_tokens,
                                stop=(c.prompt.end_of_solution,))
        res = sampler.generate([reasoner_prompt(c.prompt, q["question"]) for q in qs], params,
                               [stable_seed(c.seed, "regrade", temperature, q["id"]) for q in qs])
        for q, comps in zip(qs, res.completions):
            for comp in comps:
                text = comp.text.split(c.prompt.end_of_solution, 1)[0]  # what lm-eval hands the grader
                solution = parse_response(c.prompt, text + c.prompt.end_of_solution).solution
                old_reward = solution is not None and old_arith.grade(old_arith.extract_boxed(solution), q["answer"])
                old_eval = old_grader.grade_math(q["answer"], text).correct
                new_reward, new_eval = grade(q, solution), grade_arith(q["answer"], text).correct
                counts["responses"] += 1
                counts["correct (new)"] += new_eval
                counts["reward: old != new"] += old_reward != new_reward
                counts["evaluation: old != new"] += old_eval != new_eval
                counts["old reward != old evaluation"] += old_reward != old_eval
                counts["new reward != new evaluation"] += new_reward != new_eval
                if len({old_eval, new_eval, old_reward, new_reward}) > 1:
                    print(f"differs: gold={q['answer']!r} response={text!r} old_reward={old_reward} "
                          f"old_eval={old_eval} new_reward={new_reward} new_eval={new_eval}")
    for k, v in counts.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
