"""Held-out evaluation (step h) through lm-eval: avg@n accuracy, unbiased pass@k, bootstrap 95% CI. A builder of
the step table (``varreason.steps``).

The embedded task runs as the lm-eval task ``vr_arith`` and the paper's data as the math suite
(``varreason.eval.harness``), over the same sampler interface as the EM (HF on CPU, vLLM on GPU), in the
profile's reasoner prompt. n, temperature, top_p and max_new_tokens are params.yaml's ``eval``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from varreason.eval.harness import MATH_TASKS, run_lm_eval
from varreason.io import ArtifactRef, write_json, write_rows
from varreason.pipeline.common import device, questions, timed


def evaluate(out: Path, c, model: ArtifactRef, task: ArtifactRef, *, progress: bool = True) -> None:
    """metrics.json: ``accuracy`` (avg@n of the headline task), ``pass@k`` for each k, ``ci95``, failure counts,
    every task's scores under ``tasks``, and the lm-eval / math-verify / engine versions under ``versions``.
    ``data.task`` decides what is evaluated: ``arithmetic`` its held-out questions (``vr_arith``), the paper's
    data the maths benchmarks; ``eval.hub_suites`` follow either. questions.parquet: the headline task's
    per-question outcomes (qid, n samples, c correct), which the paired statistics of ``varreason.stats`` read."""
    ev, s = c.eval, c.sampling
    arithmetic = c.data.task == "arithmetic"
    held_out = questions(task, "heldout") if arithmetic else None
    names = (["vr_arith"] if arithmetic else list(MATH_TASKS)) + list(ev.hub_suites)
    with timed(out) as st, tempfile.TemporaryDirectory(prefix="vr-lm-eval-") as work:
        t0 = time.perf_counter()
        res = run_lm_eval(model.verify(), c.model, c.prompt, names, work, seed=c.seed,
                          max_new_tokens=ev.max_new_tokens, arith_questions=held_out,
                          limit=None if arithmetic else ev.limit,
                          repeats={t: ev.n_for(t) for t in names}, pass_k=ev.pass_k,
                          sampling={"temperature": ev.temperature, "top_p": ev.top_p},
                          backend=s.backend, batch_size=s.batch_size, device=device(),
                          tensor_parallel_size=s.tensor_parallel_size, n_boot=2000,
                          gpu_memory_utilization=s.gpu_memory_utilization)
        head = res["tasks"][names[0]]
        metrics = {"accuracy": head["avg@n"], "ci95": head["ci95"], "n_questions": head["n_questions"],
                   "n_samples": head["n_samples"], "unparsed": head["n_pred_unparseable"],
                   "wrong": head["n_wrong"], "gold_unparseable": head["n_gold_unparseable"],
                   **{f"pass@{k}": head[f"pass@{k}"] for k in ev.pass_k if f"pass@{k}" in head},
                   "tasks": res["tasks"], "versions": res["versions"],
                   "tokens_generated": res["tokens_generated"],
                   "sample_wall_s": round(time.perf_counter() - t0, 3)}
        write_json(out / "metrics.json", metrics)
        write_rows(out / "questions.parquet", [{"qid": r["id"], "n": r["n"], "c": r["c"]}
                                               for r in res["per_question"][names[0]]])
        st.update({k: v for k, v in metrics.items() if k not in ("tasks", "sample_wall_s")})
