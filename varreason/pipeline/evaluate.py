"""Held-out evaluation (step h) through lm-eval: avg@n accuracy, unbiased pass@k, bootstrap 95% CI.

The embedded task runs as the lm-eval task ``vr_arith`` and the paper's data as the math suite
(``varreason.eval.run``), over the same sampler interface as the EM (HF on CPU, vLLM on GPU). ``eval``'s
``n_samples``, ``temperature``, ``top_p`` and ``max_new_tokens`` from params.yaml override the task YAMLs'.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from varreason.config import EvalConfig, ModelConfig, PromptConfig, SamplingConfig
from varreason.eval.run import MATH_TASKS, run_lm_eval
from varreason.io import ArtifactRef, produce, write_json
from varreason.pipeline.common import device, questions, timed


def evaluate(ev: EvalConfig, sampling: SamplingConfig, model: ModelConfig, prompt: PromptConfig,
             reasoner: ArtifactRef, task: ArtifactRef, seed: int, root: str, progress: bool = True) -> ArtifactRef:
    """metrics.json: ``accuracy`` (avg@n of the headline task), ``pass@k`` for each k, ``ci95``, failure counts,
    every task's scores under ``tasks``, and the lm-eval / math-verify / engine versions under ``versions``."""
    held_out = questions(task, "heldout")
    arithmetic = held_out and "level" in held_out[0]
    names = (["vr_arith"] if arithmetic else list(MATH_TASKS)) + list(ev.hub_suites)

    def build(out: Path) -> None:
        with timed(out) as st, tempfile.TemporaryDirectory(prefix="vr-lm-eval-") as work:
            t0 = time.perf_counter()
            res = run_lm_eval(reasoner.verify(), model, names, work, seed=seed, max_new_tokens=ev.max_new_tokens,
                              limit=None if arithmetic else ev.limit,
                              arith_questions=held_out if arithmetic else None,
                              repeats={"vr_arith": ev.n_samples} if arithmetic else None, pass_k=ev.pass_k,
                              sampling={"temperature": ev.temperature, "top_p": ev.top_p},
                              backend=sampling.backend, batch_size=sampling.batch_size, device=device(),
                              tensor_parallel_size=sampling.tensor_parallel_size, n_boot=2000,
                              gpu_memory_utilization=sampling.gpu_memory_utilization)
            head = res["tasks"][names[0]]
            metrics = {"accuracy": head["avg@n"], "ci95": head["ci95"], "n_questions": head["n_questions"],
                       "n_samples": head["n_samples"], "unparsed": head["n_pred_unparseable"],
                       "wrong": head["n_wrong"], "gold_unparseable": head["n_gold_unparseable"],
                       **{f"pass@{k}": head[f"pass@{k}"] for k in ev.pass_k if f"pass@{k}" in head},
                       "tasks": res["tasks"], "versions": res["versions"],
                       "tokens_generated": res["tokens_generated"],
                       "sample_wall_s": round(time.perf_counter() - t0, 3)}
            write_json(out / "metrics.json", metrics)
            st.update({k: v for k, v in metrics.items() if k not in ("tasks", "sample_wall_s")})

    key = {"eval": ev, "engine": {"backend": sampling.backend, "batch_size": sampling.batch_size,
                                  "tp": sampling.tensor_parallel_size},
           "model": model, "prompt": prompt, "reasoner": reasoner.sha, "task": task.sha, "seed": seed}
    return produce(root, "eval", key, build)
