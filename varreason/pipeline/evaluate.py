"""Held-out evaluation (step h): avg@n accuracy, unbiased pass@k, accuracy per difficulty level."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from varreason.config import EvalConfig, ModelConfig, PromptConfig, SamplingConfig
from varreason.evaluation import avg_at_n, mean_pass_at_k
from varreason.io import ArtifactRef, produce, write_json
from varreason.pipeline.common import rows, stats, timed
from varreason.pipeline.sample import sample_responses


def evaluate(ev: EvalConfig, sampling: SamplingConfig, model: ModelConfig, prompt: PromptConfig,
             reasoner: ArtifactRef, task: ArtifactRef, seed: int, root: str, progress: bool = True) -> ArtifactRef:
    """metrics.json: ``accuracy`` (avg@n over held-out questions), ``pass@k`` for each k, ``by_level``,
    ``unparsed`` (responses without a solution block), ``tokens_generated``."""
    responses = sample_responses(sampling, model, prompt, reasoner, task, "heldout", ev.n_samples, ev.temperature,
                                 ev.top_p, ev.max_new_tokens, seed, "eval", root, progress)

    def build(out: Path) -> None:
        with timed(out) as st:
            by_q: dict[str, list[bool]] = defaultdict(list)
            level_of: dict[str, int] = {}
            unparsed = 0
            for r in rows(responses, "responses.parquet"):
                by_q[r["qid"]].append(bool(r["correct"]))
                level_of[r["qid"]] = r["level"]
                unparsed += not r["parsed"]
            correct = list(by_q.values())
            levels: dict[int, list[list[bool]]] = defaultdict(list)
            for q, c in by_q.items():
                levels[level_of[q]].append(c)
            metrics = {"accuracy": avg_at_n(correct), "n_questions": len(correct), "n_samples": ev.n_samples,
                       "unparsed": unparsed, "by_level": {str(k): avg_at_n(v) for k, v in sorted(levels.items())},
                       "tokens_generated": stats(responses)["tokens_generated"],
                       "sample_wall_s": stats(responses)["wall_s"]}
            metrics.update({f"pass@{k}": mean_pass_at_k(correct, k) for k in ev.pass_k})
            write_json(out / "metrics.json", metrics)
            st.update(metrics)

    return produce(root, "eval", {"responses": responses.sha, "eval": ev}, build)
