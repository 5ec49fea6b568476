"""Run one DVC stage (``dvc.yaml``'s ``cmd``) or every stage in one process (the flow's versioning task).

    python -m varreason.pipeline.run_stage run STAGE [--profile tiny] [--params params.yaml]
    python -m varreason.pipeline.run_stage sync [--profile tiny]     # write dvc.yaml from params and the code
    python -m varreason.pipeline.run_stage list [--profile tiny]     # stage names, in order

A stage runs its step through ``varreason.steps.run_step`` (the flow's key, so a step the flow built is a store
hit) with its inputs read from their DVC paths, then materialises the artifact at its own DVC path
(``stages.py``). Only the step's own module is imported, so a stage process starts in about a second plus torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from varreason.config import ConfigError, ExperimentConfig, load_config
from varreason.io import ArtifactRef, read_rows, write_atomic, write_json
from varreason.pipeline.stages import (DVC_YAML, DvcStage, check_dvc_yaml, check_supported, dvc_yaml, materialise,
                                       out_path, ref_at, registry)
from varreason.shards import shard_ranges
from varreason.steps import STEPS, run_merge, run_step


def _produce(st: DvcStage, c: ExperimentConfig, refs: dict[str, ArtifactRef | None]) -> ArtifactRef:
    """The step's artifact in ``c.artifacts_dir``: the call the flow's task makes (its shards and their merge
    when ``sharding.shards`` > 1)."""
    node, step = st.node, STEPS[st.node.step]
    if not (step.sharded and c.sharding.shards > 1):
        return run_step(node.step, c, refs, label=node.run, progress=False, **node.ctx)
    parts = [run_step(node.step, c, refs, label=f"{node.run}-s{i}", progress=False, shard=r, **node.ctx)
             for i, r in enumerate(shard_ranges(c.data.n_train, c.sharding.shards))]
    return run_merge(parts, c.artifacts_dir)


def run(st: DvcStage, c: ExperimentConfig, stages: dict[str, DvcStage]) -> ArtifactRef | None:
    """Run stage ``st`` with its inputs read from their DVC paths; return the materialised ref (None: report)."""
    if st.node is None:
        done = [(s, ref_at(s.out)) for s in stages.values() if s.node and STEPS[s.node.step].report]
        write_dvc_report(c, done, Path(st.out))
        return None
    refs = {role: (ref_at(out_path(c, up)) if up else None) for role, up in st.node.inputs.items()}
    return materialise(_produce(st, c, refs), st.out)


def write_dvc_report(c: ExperimentConfig, done: list[tuple[DvcStage, ArtifactRef]], out: Path) -> dict:
    """The flow's report (metrics.json, results.md, accuracy.png, same ``collect``) plus DVC's flat metrics file
    ``metrics.json`` (method -> round -> accuracy, pass@k, IWAE, ESS), plot data ``accuracy.json`` and the
    weight histogram ``weights.png``."""
    from varreason.report import Stage, collect, write_report

    stages = [Stage(s.node.method, s.node.round, STEPS[s.node.step].report, ref) for s, ref in done]
    summary = collect(stages)
    write_report(summary, c.eval.pass_k, out / "flow-report", f"# vr-em results (dvc repro): profile `{c.profile}`")
    flat: dict = {}
    for row in summary["results"]:
        flat.setdefault(row["method"], {})[f"r{row['round']}"] = {
            k: row[k] for k in ("accuracy", *(f"pass@{k}" for k in c.eval.pass_k)) if k in row}
    for w in summary["weights"]:
        flat[w["method"]][f"r{w['round']}"].update(iwae=w["iwae_mean"], ess=w["ess_mean"])
    write_json(out / "metrics.json", flat)
    write_json(out / "accuracy.json", [{"method": r["method"], "round": r["round"], "accuracy": r["accuracy"]}
                                       for r in summary["results"]])
    hist = {f"{s.node.method}-r{s.node.round}": [w["rho_tilde"] for w in read_rows(ref.verify() / "weights.parquet")]
            for s, ref in done if s.node.step == "weigh-traces"}
    write_atomic(out / "weights.png", _weight_histogram(hist))
    return summary


def _weight_histogram(hist: dict[str, list[float]]) -> bytes:
    """PNG: histogram of the self-normalised weights rho~ of every (method, round)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, vals in hist.items():
        ax.hist(vals, bins=20, range=(0, 1), histtype="step", label=name)
    ax.set_xlabel("self-normalised weight rho~")
    ax.set_ylabel("traces")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _load(profile: str | None, params: str) -> ExperimentConfig:
    cfg = load_config(params, profile)
    raw = yaml.safe_load(Path(params).read_text())["profiles"][cfg.profile]
    check_supported(cfg, raw)
    return cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m varreason.pipeline.run_stage", description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["run", "sync", "list"])
    p.add_argument("stage", nargs="?")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--params", default="params.yaml")
    a = p.parse_args(argv)
    try:
        cfg = _load(a.profile, a.params)
        if a.command == "sync":
            write_atomic(Path(DVC_YAML), dvc_yaml(cfg))
            return 0
        check_dvc_yaml(cfg)
        stages = {s.name: s for s in registry(cfg)}
        if a.command == "list":
            print("\n".join(stages))
            return 0
        if a.stage not in stages:
            raise ValueError(f"unknown stage {a.stage!r}; `list` prints the {len(stages)} stages")
        run(stages[a.stage], cfg, stages)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
