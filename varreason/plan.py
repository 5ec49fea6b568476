"""Planning dry-run of the ``vr-em`` flow: every task of the set-up and of one EM round, without running any.

``plan_round(cfg)`` is a pure function of the resolved profile (no torch, no files, no GPU): one ``PlanRow``
per task run, in the flow's order, with its inputs, the devices it asks for, an upper bound on the tokens it
generates / scores / trains on, and where its artifact goes. Artifact keys hash the *content* of upstream
artifacts, so before a run only the step directory and the key's ingredients are known; the row says so
(``artifacts/<step>/<key of: ...>``). Token counts are upper bounds from the maximum lengths in params
(generation stops earlier in practice). ``format_plan`` renders the rows as a table (``python -m flows.vr_em
--profile qwen3 --plan``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from varreason.config import ExperimentConfig
from varreason.shards import shard_ranges


@dataclass(frozen=True)
class PlanRow:
    task: str  # the Prefect task run name
    step: str  # the artifact step directory
    inputs: tuple[str, ...]  # task runs this one reads
    gpus: int  # devices requested (0: CPU only); a `gpu`-tagged task is admitted by the `gpu` concurrency limit
    launcher: str  # "in-process", "vllm tp=N", "accelerate x8 (...)"
    shards: int  # parallel pieces of the task (1: unsharded)
    est_tokens: int  # upper bound: generated + scored + trained tokens
    tokens_note: str  # how est_tokens was computed
    artifact: str  # where the output goes


def _sampler(cfg: ExperimentConfig) -> tuple[int, str]:
    if cfg.sampling.backend == "vllm":
        tp = cfg.sampling.tensor_parallel_size
        return tp, f"vllm tp={tp}"
    return (0 if cfg.model.kind == "tiny" else 1), "hf in-process"


def _trainer(cfg: ExperimentConfig) -> tuple[int, str]:
    la = cfg.train.launcher
    if la is None or la.num_processes <= 1:
        return (0 if cfg.model.kind == "tiny" else 1), "in-process"
    return la.num_processes, f"{la.kind} x{la.num_processes}" + (f" ({la.config})" if la.config else "")


SHARDED_TASKS = ("sample-traces", "score-traces", "rollout-answers", "sample-responses")


def shard_gpus(cfg: ExperimentConfig, task: str) -> int:
    """Devices one shard of ``task`` (one of ``SHARDED_TASKS``) asks for: the sampler's (vLLM: its tensor
    parallel size), or one scoring model (none for the tiny CPU model)."""
    if task not in SHARDED_TASKS:
        raise ValueError(f"{task!r} is not sharded; sharded tasks: {SHARDED_TASKS}")
    return (0 if cfg.model.kind == "tiny" else 1) if task == "score-traces" else _sampler(cfg)[0]


def _eval_requests(cfg: ExperimentConfig) -> tuple[int, str]:
    """Sampled responses per evaluation: the tiny task's held-out split x n, or the shipped math benchmarks x
    their n (``eval.n_for``: the paper's n per benchmark), as ``pipeline.evaluate`` runs them."""
    if cfg.data.task == "arithmetic":
        return cfg.data.n_heldout * cfg.eval.n_samples, f"{cfg.data.n_heldout} held-out x {cfg.eval.n_samples}"
    from pathlib import Path

    from varreason.eval.harness import DATA_DIR, MATH_TASKS

    total, parts = 0, []
    for name in MATH_TASKS:
        repeats = cfg.eval.n_for(name)
        n = sum(1 for line in (Path(DATA_DIR) / f"{name[3:]}.jsonl").read_text().splitlines() if line.strip())
        total, parts = total + n * repeats, parts + [f"{n}x{repeats}"]
    hub = f" + hub suites {', '.join(cfg.eval.hub_suites)} (sizes known at run time, not counted)"
    return total, f"benchmarks ({' + '.join(parts)}){hub if cfg.eval.hub_suites else ''}"


def _art(cfg: ExperimentConfig, step: str, key: str) -> str:
    return f"{cfg.artifacts_dir}/{step}/<key of: {key}>"


def plan_round(cfg: ExperimentConfig, round_: int = 1) -> list[PlanRow]:
    """The set-up tasks and the tasks of EM round ``round_`` (every estimator) and RFT round ``round_``."""
    c, s, t = cfg, cfg.sampling, cfg.train
    n, k, m = c.data.n_train, s.traces_per_question, s.answer_rollouts
    L = c.model.max_length
    sg, sl = _sampler(c)
    tg, tl = _trainer(c)
    sg1 = 0 if c.model.kind == "tiny" else 1  # scoring runs one model per process here
    n_shards = len(shard_ranges(n, c.sharding.shards))
    rows: list[PlanRow] = []

    def add(task, step, inputs, gpus, launcher, tokens, note, key):
        sharded = task.startswith(SHARDED_TASKS)  # the passes over the train split; evaluation is not sharded
        art = _art(c, step, key)
        if sharded and n_shards > 1:
            art = f"{_art(c, step, key + ', shard')} x{n_shards}, merged into {_art(c, step, 'shard hashes')}"
        rows.append(PlanRow(task, step, tuple(inputs), gpus, launcher, n_shards if sharded else 1, tokens, note, art))

    def train(name, inputs, steps):
        add(f"train-{name}", "checkpoint", inputs, tg, tl, steps * t.batch_size * L,
            f"{steps} steps x {t.batch_size} seqs x {L} max tokens", "train, model, init, sets, steps, seed")

    n_eval, eval_note = _eval_requests(c)

    def evaluate(label, inputs):
        add(f"evaluate-{label}", "eval", inputs, sg, sl, n_eval * c.eval.max_new_tokens,
            f"{eval_note} x {c.eval.max_new_tokens} max new", "eval, model, prompt, reasoner, task, seed")

    add(f"preflight-{c.profile}", "-", [], 0, "in-process", 0, "checks packages, CUDA, model files", "")
    rows[-1] = PlanRow(**{**asdict(rows[-1]), "artifact": "- (nothing written)"})
    add("build-task", "task", [f"preflight-{c.profile}"], 0, "in-process", 0,
        f"{c.data.task}: {n} train + {c.data.n_heldout} held-out questions", "data, seed" if c.data.task == "bespoke" else "data, prompt, seed")
    add("init-backbone", "backbone", ["build-task"], 0, "in-process", 0, c.model.name_or_path or "tiny from scratch",
        "model, task, seed")
    for role in ("reasoner", "posterior"):
        add(f"build-seed-set-{role}", "seed-set", ["build-task"], 0, "in-process", 0,
            f"{c.data.n_seed_traces} seed traces", "prompt, task, role")
    train("pi0", ["init-backbone", "build-seed-set-reasoner"], t.init_steps)
    train("q0", ["init-backbone", "build-seed-set-posterior"], t.init_steps)
    evaluate("sft-r0", ["train-pi0"])
    r = round_
    prev_pi = "train-pi0" if r == 1 else f"train-pi-em-{{e}}-r{r - 1}"
    prev_q = "train-q0" if r == 1 or not c.em.refresh_posterior else f"train-q-em-{{e}}-r{r - 1}"
    for e in c.objective.estimators:
        tag = f"em-{e}-r{r}"
        pi, q = prev_pi.format(e=e), prev_q.format(e=e)
        scorer = "train-pi0" if c.em.weights_model == "initial" else pi
        add(f"sample-traces-{tag}", "traces", [q, "build-task"], sg, sl, n * k * s.max_trace_tokens,
            f"{n} questions x K={k} x {s.max_trace_tokens} max new",
            "sampling, model, prompt, posterior, task, seed, round")
        add(f"score-traces-{tag}", "scores", [scorer, q, f"sample-traces-{tag}"], sg1, "in-process",
            2 * n * k * L, f"2 models x {n} x K={k} x {L} max tokens",
            "model, prompt, reasoner, posterior, traces, task, temp")
        inputs = [f"sample-traces-{tag}", f"score-traces-{tag}"]
        if e == "acc":
            add(f"rollout-answers-{tag}", "answers", [scorer, f"sample-traces-{tag}"], sg, sl,
                n * k * m * s.max_answer_tokens, f"{n} x K={k} x M={m} x {s.max_answer_tokens} max new",
                "sampling, model, prompt, reasoner, traces, task, seed")
            inputs.append(f"rollout-answers-{tag}")
        add(f"weigh-traces-{tag}", "weights", inputs, 0, "in-process", 0, f"{n * k} traces",
            "estimator, traces, scores, answers")
        add(f"build-reasoner-set-{tag}", "reasoner-set", [f"weigh-traces-{tag}", "build-task"], 0, "in-process", 0,
            f"selection {c.objective.selection}", "objective, estimator, prompt, weights, traces, answers, task")
        init = "train-pi0" if c.em.reasoner_init == "initial" else pi
        train(f"pi-{tag}", [init, f"build-reasoner-set-{tag}"], t.steps)
        if c.em.refresh_posterior:
            add(f"sample-responses-{tag}", "responses", [f"train-pi-{tag}", "build-task"], sg, sl,
                n * k * (s.max_trace_tokens + s.max_answer_tokens), f"{n} x {k} x trace+answer max new",
                "engine, model, prompt, reasoner, task, split, n, sampling, seed, purpose")
            add(f"build-posterior-set-{tag}", "posterior-set", [f"sample-responses-{tag}"], 0, "in-process", 0,
                "forward-KL weights", "prompt, responses, task")
            train(f"q-{tag}", [q, f"build-posterior-set-{tag}"], t.posterior_steps)
        evaluate(tag, [f"train-pi-{tag}"])
    if c.baselines.rft:
        tag, ns = f"rft-r{r}", c.baselines.rft_samples
        pi = "train-pi0" if r == 1 else f"train-pi-rft-r{r - 1}"
        add(f"sample-responses-{tag}", "responses", [pi, "build-task"], sg, sl,
            n * ns * (s.max_trace_tokens + s.max_answer_tokens), f"{n} x {ns} x trace+answer max new",
            "engine, model, prompt, reasoner, task, split, n, sampling, seed, purpose")
        add(f"build-rft-set-{tag}", "rft-set", [f"sample-responses-{tag}"], 0, "in-process", 0, "verified-correct",
            "prompt, responses, task, mix")
        train(f"pi-{tag}", ["train-pi0" if c.em.reasoner_init == "initial" else pi, f"build-rft-set-{tag}"], t.steps)
        evaluate(tag, [f"train-pi-{tag}"])
    add("publish-results", "-", ["every evaluate-*"], 0, "in-process", 0, "table, plot, metrics.json",
        f"{c.results_dir}/")
    rows[-1] = PlanRow(**{**asdict(rows[-1]), "artifact": f"{c.results_dir}/{{metrics.json,results.md,accuracy.png}}"})
    return rows


def _human(x: int) -> str:
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if x >= size:
            return f"{x / size:.1f}{unit}"
    return str(x)


def format_plan(cfg: ExperimentConfig, rows: list[PlanRow]) -> str:
    """A Markdown table of ``rows`` plus totals."""
    cols = ["task", "inputs", "gpus", "launcher", "shards", "est. tokens", "artifact"]
    lines = [f"plan of one round of vr-em, profile {cfg.profile!r} (token counts are upper bounds from max lengths)",
             "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append(f"| {r.task} | {', '.join(r.inputs) or '-'} | {r.gpus} | {r.launcher} | {r.shards} | "
                     f"{_human(r.est_tokens)} ({r.tokens_note}) | {r.artifact} |")
    total = sum(r.est_tokens for r in rows)
    gpu_tasks = sum(r.gpus > 0 for r in rows)
    lines += ["", f"{len(rows)} task runs, {gpu_tasks} of them on GPUs (largest request: "
              f"{max(r.gpus for r in rows)} GPUs); at most {_human(total)} tokens in all", "", *format_shards(cfg)]
    return "\n".join(lines)


def format_shards(cfg: ExperimentConfig) -> list[str]:
    """The shard plan: which question ranges each sharded pass splits into, and where the shards run."""
    s, n = cfg.sharding, cfg.data.n_train
    ranges = shard_ranges(n, s.shards)
    if len(ranges) == 1:
        return [f"sharding: none (sharding.shards = 1): {', '.join(SHARDED_TASKS)} run as one task each"]
    cluster = s.ray_address or f"a local cluster, {s.ray_num_cpus or 'all'} CPUs"
    where = "the flow's process, one shard at a time" if s.runner == "local" else f"Ray via prefect-ray ({cluster})"
    lines = [f"sharding: {', '.join(SHARDED_TASKS)} each split into {len(ranges)} task runs "
             f"(<task>-s<i>, gpus column = per shard) over the {n} train questions, then merge-<task>; "
             f"runner: {where}", "", "| shard | questions | count |", "|---|---|---|"]
    lines += [f"| s{i} | [{a}, {b}) | {b - a} |" for i, (a, b) in enumerate(ranges)]
    return lines


COLUMNS = tuple(f.name for f in fields(PlanRow))
