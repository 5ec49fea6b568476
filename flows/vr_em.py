"""The ``vr-em`` flow: variational EM (Zhou et al. 2025) with SFT-only and RFT baselines in one harness.

Run: ``python -m flows.vr_em [--profile tiny] [--set em.rounds=1 ...]`` (``make demo`` runs the tiny profile).
Per round r and estimator e: sample K traces from q -> score under pi and q (+ M answer rollouts for Acc) ->
weights -> reasoner training set -> train pi_r -> refresh q (forward KL) -> evaluate pi_r.
"""

from __future__ import annotations

if __name__ == "__main__":  # the CLI validates params.yaml before Prefect is imported, so bad input errors in ~0.3 s
    from flows.cli import main

    raise SystemExit(main())

from prefect import flow

from flows.shards import sharded
from tasks.data import build_seed_set, build_task, init_backbone
from tasks.evaluation import evaluate, publish_results
from tasks.preflight import preflight
from tasks.sampling import rollout_answers, sample_responses, sample_traces
from tasks.training import train_model
from tasks.versioning import version_run
from tasks.weighting import (build_posterior_set, build_reasoner_set, build_rft_set, score_traces,
                             weigh_traces)
from varreason.config import load_config
from varreason.report import Stage


def _em_round(cfg, est, r, pi, q, pi0, task, stages):
    c, root, tag = cfg, cfg.artifacts_dir, f"em-{est}-r{r}"
    scorer = pi0 if c.em.weights_model == "initial" else pi
    traces = sharded(c, sample_traces)(c.sampling, c.model, c.prompt, q, task, c.seed, r, tag, root)
    temp = c.sampling.temperature if c.objective.proposal_density == "tempered" else 1.0
    scores = sharded(c, score_traces)(c.model, c.prompt, scorer, q, traces, task, temp, tag, root)
    answers = (sharded(c, rollout_answers)(c.sampling, c.model, c.prompt, scorer, traces, task, c.seed, tag, root)
               if est == "acc" else None)
    weights = weigh_traces(est, traces, scores, answers, tag, root, trace_cutoff=c.objective.trace_cutoff)
    examples = build_reasoner_set(c.objective, est, c.prompt, weights, traces, answers, task, tag, root)
    init = pi0 if c.em.reasoner_init == "initial" else pi
    pi = train_model(c.train, c.model, init, [examples], c.train.steps, c.seed + r, f"pi-{tag}", root)
    if c.em.refresh_posterior:
        resp = sharded(c, sample_responses)(c.sampling, c.model, c.prompt, pi, task, c.sampling.traces_per_question,
                                            c.seed, f"refresh-r{r}", tag, root)
        post_set = build_posterior_set(c.prompt, resp, task, tag, root)
        q = train_model(c.train, c.model, q, [post_set], c.train.posterior_steps, c.seed + r, f"q-{tag}", root)
        stages += [Stage(f"em-{est}", r, "refresh-sample", resp), Stage(f"em-{est}", r, "refresh-train", q)]
    stages += [Stage(f"em-{est}", r, "sample-traces", traces), Stage(f"em-{est}", r, "score", scores),
               Stage(f"em-{est}", r, "weights", weights), Stage(f"em-{est}", r, "train-set", examples),
               Stage(f"em-{est}", r, "train", pi)]
    if answers is not None:
        stages.append(Stage(f"em-{est}", r, "rollout-answers", answers))
    return pi, q


@flow(name="vr-em", flow_run_name="vr-em-{profile}", log_prints=True)
def vr_em(profile: str | None = None, params_path: str = "params.yaml", overrides: dict | None = None) -> dict:
    """Run the whole experiment for ``profile`` of ``params_path`` with dotted ``overrides``; return metrics."""
    c = load_config(params_path, profile, overrides)
    preflight(c)
    root = c.artifacts_dir
    task = build_task(c.data, c.prompt, c.seed, root)
    backbone = init_backbone(c.model, task, c.seed, root)
    seed_pi = build_seed_set(c.prompt, task, "reasoner", root)
    seed_q = build_seed_set(c.prompt, task, "posterior", root)
    pi0 = train_model(c.train, c.model, backbone, [seed_pi], c.train.init_steps, c.seed, "pi0", root)
    q0 = train_model(c.train, c.model, backbone, [seed_q], c.train.init_steps, c.seed, "q0", root)
    stages = [Stage("sft", 0, "train", pi0), Stage("sft", 0, "train-posterior", q0)]
    stages.append(Stage("sft", 0, "eval", evaluate(c.eval, c.sampling, c.model, c.prompt, pi0, task, c.seed,
                                                   "sft-r0", root, data_task=c.data.task)))
    for est in c.objective.estimators:
        pi, q = pi0, q0
        for r in range(1, c.em.rounds + 1):
            pi, q = _em_round(c, est, r, pi, q, pi0, task, stages)
            stages.append(Stage(f"em-{est}", r, "eval", evaluate(c.eval, c.sampling, c.model, c.prompt, pi, task,
                                                                 c.seed, f"em-{est}-r{r}", root,
                                                                 data_task=c.data.task)))
    pi = pi0
    for r in range(1, c.em.rounds + 1) if c.baselines.rft else ():
        resp = sharded(c, sample_responses)(c.sampling, c.model, c.prompt, pi, task, c.baselines.rft_samples, c.seed,
                                            f"rft-r{r}", f"rft-r{r}", root)
        examples = build_rft_set(c.prompt, resp, task, c.objective.mix_seed_data, f"rft-r{r}", root)
        pi = train_model(c.train, c.model, pi0 if c.em.reasoner_init == "initial" else pi, [examples],
                         c.train.steps, c.seed + r, f"pi-rft-r{r}", root)
        stages += [Stage("rft", r, "sample-responses", resp), Stage("rft", r, "train-set", examples),
                   Stage("rft", r, "train", pi),
                   Stage("rft", r, "eval", evaluate(c.eval, c.sampling, c.model, c.prompt, pi, task, c.seed,
                                                    f"rft-r{r}", root, data_task=c.data.task))]
    summary = publish_results(c, stages)
    version_run(c, params_path, overrides, summary["git_commit"])  # dvc.lock + push; a no-op off the DVC profile
    return summary
