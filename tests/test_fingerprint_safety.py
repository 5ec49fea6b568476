"""Safety net of the per-step code fingerprints: every step of a smoke run, each in a fresh process, may load only
``varreason`` modules that are in its static fingerprint (or ``fingerprint.NEUTRAL``) and may open only package
files in its fingerprint (code or data). A module a step loads but its key does not cover would let a cache hit
return a result computed by other code: that fails here, naming the step and the module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from varreason.config import load_config
from varreason.io import ArtifactRef
from varreason.recipe import graph
from varreason.steps import STEPS, fingerprint, run_step

ROOT = Path(__file__).resolve().parents[1]

# One step in this process: the harness loads only what every step needs anyway (config, io, the table), then
# records the varreason modules and package files the step loads while it runs (import hook + audit hook).
CHILD = r"""
import json, sys
from varreason.config import load_config
from varreason.io import ArtifactRef
from varreason import steps
req = json.loads(sys.argv[1])
cfg = load_config(req["params"], "smoke", req["overrides"])
refs = {r: (ArtifactRef(**v) if v else None) for r, v in req["refs"].items()}
pkg = steps.fp.ROOT
opened = set()
sys.addaudithook(lambda ev, args: opened.add(str(args[0])) if ev == "open" and isinstance(args[0], str)
                 and args[0].startswith(str(pkg) + "/") else None)
before = set(sys.modules)
ref = steps.run_step(req["step"], cfg, refs, label=req["run"], progress=False, **req["ctx"])
loaded = sorted(m for m in set(sys.modules) - before
                if m.split(".")[0] == "varreason" or str(getattr(sys.modules[m], "__file__", "") or "").startswith(str(pkg)))
files = {m: str(getattr(sys.modules[m], "__file__", "") or "") for m in loaded}
print("RESULT " + json.dumps({"ref": ref.model_dump(), "modules": files, "opened": sorted(opened),
                              "harness": sorted(m for m in before if m.split(".")[0] == "varreason")}))
"""


def _run_node(node, refs: dict, over: dict) -> dict:
    req = {"params": str(ROOT / "params.yaml"), "overrides": over, "step": node.step, "run": node.run,
           "ctx": node.ctx, "refs": {r: (refs[u] if u else None) for r, u in node.inputs.items()}}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(req)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, f"{node.run}: {out.stderr[-3000:]}"
    return json.loads(next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])


@pytest.mark.slow
def test_every_step_loads_only_what_its_fingerprint_covers(tmp_path):
    from varreason.fingerprint import NEUTRAL, rel

    over = {"artifacts_dir": str(tmp_path / "a"), "results_dir": str(tmp_path / "r"), "em.rounds": 1,
            "baselines.grpo": True}  # every step of the table runs
    cfg = load_config(ROOT / "params.yaml", "smoke", over)
    refs: dict[str, dict] = {}
    seen, problems = set(), []
    for node in graph(cfg):
        if node.step in seen:  # checked already: build it here, in this process
            ins = {r: (ArtifactRef(**refs[u]) if u else None) for r, u in node.inputs.items()}
            refs[node.run] = run_step(node.step, cfg, ins, label=node.run, progress=False, **node.ctx).model_dump()
            continue
        res = _run_node(node, refs, over)
        refs[node.run] = res["ref"]
        seen.add(node.step)
        f = fingerprint(STEPS[node.step], cfg)
        covered = set(f["code"]) | set(f["data"])
        for mod, path in res["modules"].items():
            in_pkg = path and Path(path).resolve().is_relative_to(ROOT / "varreason")
            if mod in NEUTRAL or (in_pkg and rel(Path(path)) in covered):
                continue
            problems.append(f"{node.step}: loads {mod} ({path or 'no file'}), not in its fingerprint")
        for path in res["opened"]:  # data files (python files are checked as modules above)
            p = Path(path).resolve()
            if p.suffix not in (".py", ".pyc") and p.is_file() and rel(p) not in covered:
                problems.append(f"{node.step}: opens {rel(p)}, not in its fingerprint")
        assert set(res["harness"]) <= {"varreason", *NEUTRAL, "varreason.io", "varreason.steps",
                                       "varreason.fingerprint"}, res["harness"]
    assert seen == set(STEPS), f"steps the smoke run never reached: {set(STEPS) - seen}"
    assert not problems, "\n".join(problems)
