"""Planning dry-run of the ``vr-em`` flow: every task of the set-up and of one EM round, without running any.

``plan_round(cfg)`` reads the run's steps from the recipe (``varreason.recipe.graph``) and the step table; it
needs no GPU and touches no file: one ``PlanRow`` per task run, in the flow's order, with its inputs, the devices
it asks for, an upper bound on the tokens it generates / scores / trains on, and where its artifact goes.
Artifact keys hash the *content* of upstream artifacts, so before a run only the step directory and the key's
ingredients are known; the row says so (``artifacts/<step>/<key of: ...>``). Token counts are upper bounds from
the maximum lengths in params (generation stops earlier in practice). ``format_plan`` renders the rows as a table
(``python -m flows.vr_em --profile qwen3 --plan``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from varreason.config import ExperimentConfig
from varreason.recipe import Node, graph
from varreason.shards import shard_ranges
from varreason.steps import STEPS


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


def resources(cfg: ExperimentConfig, step: str) -> tuple[int, str]:
    """(devices, how) for one run of ``step`` (one shard of a sharded step): the sampler's for steps that sample
    (vLLM: its tensor-parallel size), the launcher's for training, one scoring model (none for the tiny CPU
    model) for scoring, none for CPU-only steps."""
    s = STEPS[step]
    if not s.gpu:
        return 0, "in-process"
    if s.scratch:
        return _trainer(cfg)
    if "sampling.backend" in s.reads:
        return _sampler(cfg)
    return (0 if cfg.model.kind == "tiny" else 1), "in-process"


def step_gpus(cfg: ExperimentConfig, step: str) -> int:
    return resources(cfg, step)[0]


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


def tokens(cfg: ExperimentConfig, step: str) -> tuple[int, str]:
    """Upper bound on the tokens one run of ``step`` generates + scores + trains on, and how it was computed."""
    c, s, t = cfg, cfg.sampling, cfg.train
    n, k, m, L = c.data.n_train, s.traces_per_question, s.answer_rollouts, c.model.max_length
    resp = s.max_trace_tokens + s.max_answer_tokens
    train_steps = {"train-pi0": t.init_steps, "train-q0": t.init_steps, "train-reasoner": t.steps,
                   "train-posterior": t.posterior_steps}
    if step in train_steps:
        return train_steps[step] * t.batch_size * L, f"{train_steps[step]} steps x {t.batch_size} seqs x {L} max tokens"
    if step == "evaluate":
        n_eval, note = _eval_requests(c)
        return n_eval * c.eval.max_new_tokens, f"{note} x {c.eval.max_new_tokens} max new"
    return {
        "build-task": (0, f"{c.data.task}: {n} train + {c.data.n_heldout} held-out questions"),
        "init-backbone": (0, c.model.name_or_path or "tiny from scratch"),
        "build-seed-set": (0, f"{c.data.n_seed_traces} seed traces"),
        "sample-traces": (n * k * s.max_trace_tokens, f"{n} questions x K={k} x {s.max_trace_tokens} max new"),
        "score-traces": (2 * n * k * L, f"2 models x {n} x K={k} x {L} max tokens"),
        "rollout-answers": (n * k * m * s.max_answer_tokens, f"{n} x K={k} x M={m} x {s.max_answer_tokens} max new"),
        "weigh-traces": (0, f"{n * k} traces"),
        "build-reasoner-set": (0, f"selection {c.objective.selection}"),
        "sample-refresh": (n * k * resp, f"{n} x {k} x trace+answer max new"),
        "build-posterior-set": (0, "forward-KL weights"),
        "sample-rft": (n * c.baselines.rft_samples * resp, f"{n} x {c.baselines.rft_samples} x trace+answer max new"),
        "build-rft-set": (0, "verified-correct"),
    }.get(step, (0, ""))


def _art(cfg: ExperimentConfig, step: str, key: str) -> str:
    return f"{cfg.artifacts_dir}/{step}/<key of: {key}>"


def _row(c: ExperimentConfig, node: Node, n_shards: int) -> PlanRow:
    s = STEPS[node.step]
    gpus, how = resources(c, node.step)
    est, note = tokens(c, node.step)
    key = ", ".join([*s.roles(), *s.reads, *s.ctx])
    art = _art(c, s.out, key)
    shards = n_shards if s.sharded else 1
    if shards > 1:
        art = f"{_art(c, s.out, key + ', shard')} x{shards}, merged into {_art(c, s.out, 'shard hashes')}"
    return PlanRow(node.run, s.out, tuple(u for u in node.inputs.values() if u), gpus, how, shards, est, note, art)


def plan_round(cfg: ExperimentConfig, round_: int = 1) -> list[PlanRow]:
    """The set-up tasks and the tasks of EM round ``round_`` (every estimator) and RFT round ``round_``."""
    c = cfg
    n_shards = len(shard_ranges(c.data.n_train, c.sharding.shards))
    rows = [PlanRow(f"preflight-{c.profile}", "-", (), 0, "in-process", 1, 0, "checks packages, CUDA, model files",
                    "- (nothing written)")]
    for node in graph(c):
        if node.round in (0, round_):
            row = _row(c, node, n_shards)
            if node.step == "build-task":
                row = PlanRow(**{**asdict(row), "inputs": (f"preflight-{c.profile}",)})
            rows.append(row)
    rows.append(PlanRow("publish-results", "-", ("every evaluate-*",), 0, "in-process", 1, 0,
                        "table, plot, metrics.json", f"{c.results_dir}/{{metrics.json,results.md,accuracy.png}}"))
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
              f"{max(r.gpus for r in rows)} GPUs); at most {_human(total)} tokens in all", "", *format_shards(cfg),
              "", *format_chains(cfg)]
    return "\n".join(lines)


_RATE_KEYS = {"generate": "generate_tokens_per_s", "score": "score_tokens_per_s", "train": "train_tokens_per_s"}


def _kind(step: str) -> str:
    s = STEPS[step]
    return "train" if s.scratch else "generate" if "sampling.backend" in s.reads else "score"


def chains(cfg: ExperimentConfig, rates: dict[str, float] | None = None) -> list[dict]:
    """The whole run (every round) split into the set-up and the independent chains (``em-<est>``, ``rft``,
    ``grpo``): per chain its GPU steps, token upper bound and, given measured per-GPU ``rates`` (tokens/s by kind:
    ``generate_tokens_per_s``, ``score_tokens_per_s``, ``train_tokens_per_s``, e.g. from
    ``benchmarks/results-gpu.json``), GPU-hours = tokens / rate (a step on g GPUs runs ~g times faster and holds g
    GPUs, so its GPU-hours do not depend on g) and wall-hours = GPU-hours / g."""
    out: dict[str, dict] = {}
    for node in graph(cfg):
        name = "set-up" if node.method in ("data", "sft") else node.method
        c = out.setdefault(name, {"chain": name, "steps": 0, "tokens": 0, "gpu_h": 0.0, "wall_h": 0.0})
        gpus = resources(cfg, node.step)[0]
        tok = tokens(cfg, node.step)[0]
        c["steps"] += 1
        c["tokens"] += tok
        rate = (rates or {}).get(_RATE_KEYS[_kind(node.step)]) if gpus else None
        if rate:
            c["gpu_h"] += tok / rate / 3600
            c["wall_h"] += tok / rate / 3600 / gpus
    return list(out.values())


def format_chains(cfg: ExperimentConfig, rates: dict[str, float] | None = None) -> list[str]:
    """The chains of the whole run and its critical path: set-up then the longest chain when they run at once
    (``em.concurrent_chains``), set-up then every chain in turn otherwise."""
    rows = chains(cfg, rates)
    setup, rest = rows[0], rows[1:]
    by = "wall_h" if rates else "tokens"
    longest = max(rest, key=lambda r: r[by]) if rest else setup
    unit = (lambda r: f"{r['gpu_h']:.1f} GPU-h, {r['wall_h']:.1f} h wall") if rates else (lambda r: "rates unknown")
    lines = [f"chains of the whole run ({cfg.em.rounds} rounds), token counts upper bounds:", "",
             "| chain | steps | est. tokens | GPU-hours |", "|---|---|---|---|"]
    lines += [f"| {r['chain']} | {r['steps']} | {_human(r['tokens'])} | {unit(r)} |" for r in rows]
    mode = "at once (em.concurrent_chains)" if cfg.em.concurrent_chains else "one after another"
    if cfg.em.concurrent_chains:
        path = f"set-up -> {longest['chain']}"
    else:
        path = "set-up -> " + " -> ".join(r["chain"] for r in rest)
    lines += ["", f"critical path, chains {mode}: {path}"]
    if not rates:
        lines.append("GPU-hours need measured per-GPU rates: `make gpu-check` on a GPU writes them "
                     "(benchmarks/results-gpu.json); none is recorded here")
    return lines


def format_shards(cfg: ExperimentConfig) -> list[str]:
    """The shard plan: which question ranges each sharded pass splits into, and where the shards run."""
    s, n = cfg.sharding, cfg.data.n_train
    ranges = shard_ranges(n, s.shards)
    sharded = ", ".join(name for name, step in STEPS.items() if step.sharded)
    if len(ranges) == 1:
        return [f"sharding: none (sharding.shards = 1): {sharded} run as one task each"]
    cluster = s.ray_address or f"a local cluster, {s.ray_num_cpus or 'all'} CPUs"
    where = "the flow's process, one shard at a time" if s.runner == "local" else f"Ray via prefect-ray ({cluster})"
    lines = [f"sharding: {sharded} each split into {len(ranges)} task runs "
             f"(<task>-s<i>, gpus column = per shard) over the {n} train questions, then merge-<task>; "
             f"runner: {where}", "", "| shard | questions | count |", "|---|---|---|"]
    lines += [f"| s{i} | [{a}, {b}) | {b - a} |" for i, (a, b) in enumerate(ranges)]
    return lines


COLUMNS = tuple(f.name for f in fields(PlanRow))
