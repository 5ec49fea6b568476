"""Run one DVC stage (``dvc.yaml``'s ``cmd``) or the whole registry in one process (the flow's versioning task).

    python -m varreason.pipeline.run_stage run STAGE [--profile tiny] [--params params.yaml]
    python -m varreason.pipeline.run_stage sync [--profile tiny]     # rewrite dvc/rounds.yaml from params
    python -m varreason.pipeline.run_stage list [--profile tiny]     # stage names, in order

Each stage calls the same ``varreason.pipeline`` function as the flow's task (same configs, seeds, labels) on
the profile's ``artifacts_dir``, then materialises the artifact at the stage's DVC path (``stages.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from varreason.config import ConfigError, ExperimentConfig, load_config
from varreason.io import ArtifactRef, read_rows, write_atomic, write_json
from varreason.pipeline.stages import (ROUNDS_FILE, StageSpec, check_rounds_file, check_supported, materialise,
                                       ref_at, registry, rounds_vars)

# DVC step -> the label the flow's report uses for the same artifact (None: not in the flow's report).
REPORT_LABEL = {"pi0": "train", "q0": "train-posterior", "eval": "eval", "traces": "sample-traces",
                "score": "score", "answers": "rollout-answers", "weights": "weights", "reasoner-set": "train-set",
                "train": "train", "refresh-sample": "refresh-sample", "refresh-train": "refresh-train",
                "rft-sample": "sample-responses", "rft-set": "train-set"}


def _produce(s: StageSpec, c: ExperimentConfig, refs: dict[str, ArtifactRef]) -> ArtifactRef:
    """The step's artifact in ``c.artifacts_dir``: exactly the call ``flows/vr_em.py`` makes for this step."""
    import importlib

    # One stage is one process under `dvc repro`: import only the step's module (lm-eval is slow to import).
    mod = {"task": "data", "backbone": "data", "seed-set": "data", "pi0": "train", "q0": "train", "train": "train",
           "refresh-train": "train", "eval": "evaluate", "traces": "sample", "answers": "sample",
           "refresh-sample": "sample", "rft-sample": "sample"}.get(s.step, "weigh")
    m = importlib.import_module(f"varreason.pipeline.{mod}")
    data = evaluate = sample = train = weigh = m
    root, st, r = c.artifacts_dir, s.step, s.round
    tag = f"em-{s.est}-r{r}" if s.est else f"rft-r{r}"
    scorer = refs.get("pi0") if c.em.weights_model == "initial" else refs.get("pi")
    init = refs.get("pi0") if c.em.reasoner_init == "initial" else refs.get("pi")
    if st == "task":
        return data.build_task(c.data, c.prompt, c.seed, root)
    if st == "backbone":
        return data.init_backbone(c.model, refs["task"], c.seed, root)
    if st == "seed-set":
        return data.build_seed_set(c.prompt, refs["task"], s.name.split("@")[1], root)
    if st in ("pi0", "q0"):
        return train.train_model(c.train, c.model, refs["init"], [refs["set"]], c.train.init_steps, c.seed, st, root)
    if st == "eval":
        return evaluate.evaluate(c.eval, c.sampling, c.model, c.prompt, refs["model"], refs["task"], c.seed, root,
                                 data_task=c.data.task)
    if st == "traces":
        return sample.sample_traces(c.sampling, c.model, c.prompt, refs["q"], refs["task"], c.seed, r, root)
    if st == "score":
        temp = c.sampling.temperature if c.objective.proposal_density == "tempered" else 1.0
        return weigh.score_traces(c.model, c.prompt, scorer, refs["q"], refs["traces"], refs["task"], temp, root)
    if st == "answers":
        return sample.rollout_answers(c.sampling, c.model, c.prompt, scorer, refs["traces"], refs["task"], c.seed,
                                      root)
    if st == "weights":
        return weigh.weigh_traces(s.est, refs["traces"], refs["scores"], refs.get("answers"), root,
                                  trace_cutoff=c.objective.trace_cutoff)
    if st == "reasoner-set":
        return weigh.build_reasoner_set(c.objective, s.est, c.prompt, refs["weights"], refs["traces"],
                                        refs.get("answers"), refs["task"], root)
    if st == "train":
        label = f"pi-{tag}"
        return train.train_model(c.train, c.model, init, [refs["set"]], c.train.steps, c.seed + r, label, root)
    if st in ("refresh-sample", "rft-sample"):
        n = c.sampling.traces_per_question if st == "refresh-sample" else c.baselines.rft_samples
        purpose = f"refresh-r{r}" if st == "refresh-sample" else f"rft-r{r}"
        return sample.sample_responses(c.sampling, c.model, c.prompt, refs["pi"], refs["task"], "train", n,
                                       c.sampling.temperature, c.sampling.top_p,
                                       c.sampling.max_trace_tokens + c.sampling.max_answer_tokens, c.seed, purpose,
                                       root)
    if st == "posterior-set":
        return weigh.build_posterior_set(c.prompt, refs["responses"], refs["task"], root)
    if st == "refresh-train":
        return train.train_model(c.train, c.model, refs["q"], [refs["set"]], c.train.posterior_steps, c.seed + r,
                                 f"q-{tag}", root)
    if st == "rft-set":
        return weigh.build_rft_set(c.prompt, refs["responses"], refs["task"], c.objective.mix_seed_data, root)
    raise ValueError(f"unknown step {st!r}")


def run(s: StageSpec, c: ExperimentConfig, specs: dict[str, StageSpec]) -> ArtifactRef | None:
    """Run stage ``s`` with its inputs read from their DVC paths; return the materialised ref (None: report)."""
    refs = {role: ref_at(specs[name].out) for role, name in s.inputs.items()}
    if s.step == "report":
        write_dvc_report(c, [(specs[n], ref) for n, ref in refs.items()], Path(s.out))
        return None
    return materialise(_produce(s, c, refs), s.out)


def write_dvc_report(c: ExperimentConfig, done: list[tuple[StageSpec, ArtifactRef]], out: Path) -> dict:
    """The flow's report (metrics.json, results.md, accuracy.png, same ``collect``) plus DVC's flat metrics file
    ``metrics.json`` (method -> round -> accuracy, pass@k, IWAE, ESS), plot data ``accuracy.json`` and the
    weight histogram ``weights.png``."""
    from varreason.report import Stage, collect, write_report

    stages = [Stage(s.method, s.round, REPORT_LABEL[s.step], ref) for s, ref in done if s.step in REPORT_LABEL]
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
    hist = {f"{s.method}-r{s.round}": [w["rho_tilde"] for w in read_rows(ref.verify() / "weights.parquet")]
            for s, ref in done if s.step == "weights"}
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


def _load(profile: str | None, params: str) -> tuple[ExperimentConfig, dict]:
    cfg = load_config(params, profile)
    raw = yaml.safe_load(Path(params).read_text())["profiles"][cfg.profile]
    check_supported(cfg, raw)
    return cfg, raw


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m varreason.pipeline.run_stage", description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["run", "sync", "list"])
    p.add_argument("stage", nargs="?")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--params", default="params.yaml")
    a = p.parse_args(argv)
    try:
        cfg, _ = _load(a.profile, a.params)
        if a.command == "sync":
            write_atomic(Path(ROUNDS_FILE), "# written by `python -m varreason.pipeline.run_stage sync`; "
                         "checked against params.yaml by every stage\n" + yaml.safe_dump(rounds_vars(cfg)))
            return 0
        check_rounds_file(cfg)
        specs = {s.name: s for s in registry(cfg)}
        if a.command == "list":
            print("\n".join(specs))
            return 0
        if a.stage not in specs:
            raise ValueError(f"unknown stage {a.stage!r}; `list` prints the {len(specs)} stages")
        run(specs[a.stage], cfg, specs)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
