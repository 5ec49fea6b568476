"""Task data, the backbone, and the seed SFT sets of pi_theta0 and q_phi (step a)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from varreason import arith
from varreason.config import DataConfig, ModelConfig, PromptConfig
from varreason.io import ArtifactRef, produce, write_rows
from varreason.pipeline.common import questions, timed
from varreason.prompts import (full_response, hint_of, posterior_prompt, reasoner_prompt, reference_solution,
                               trace_target)


def build_task(data: DataConfig, prompt: PromptConfig, seed: int, root: str) -> ArtifactRef:
    """questions.parquet (id, question, answer, level, split, gold_trace; Bespoke adds solution, hint, grader) and,
    for the embedded task, the character tokenizer it defines (a pretrained backbone brings its own)."""
    if data.task == "bespoke":
        return _build_bespoke(data, seed, root)

    def build(out: Path) -> None:
        with timed(out) as st:
            qs = arith.generate(data.n_train, data.n_heldout, data.n_seed_traces, data.levels, data.max_operand, seed,
                               data.ops, data.modulus)
            write_rows(out / "questions.parquet", [asdict(q) for q in qs])
            from varreason.modeling import build_char_tokenizer

            build_char_tokenizer(arith.charset(data.max_operand), prompt).save_pretrained(out / "tokenizer")
            st.update(n_train=data.n_train, n_heldout=data.n_heldout, n_seed=data.n_seed_traces, modulus=data.modulus)

    return produce(root, "task", {"data": data, "prompt": prompt, "seed": seed}, build)


def _build_bespoke(data: DataConfig, seed: int, root: str) -> ArtifactRef:
    def build(out: Path) -> None:
        from varreason import bespoke

        with timed(out) as st:
            src = bespoke.load_rows(data.dataset)
            qs = bespoke.questions(src, data.n_train, data.n_heldout, data.n_seed_traces, seed)
            write_rows(out / "questions.parquet", [{**q, "grader": "math"} for q in qs])
            n_seed = sum(q["gold_trace"] is not None for q in qs)
            st.update(n_train=data.n_train, n_heldout=data.n_heldout, n_seed=n_seed,
                      n_seed_empty=data.n_seed_traces - n_seed, n_code=sum(not q["answer"] for q in qs),
                      n_duplicate_questions=bespoke.duplicate_questions(src), dataset=data.dataset)

    return produce(root, "task", {"data": data, "seed": seed}, build)


def init_backbone(model: ModelConfig, task: ArtifactRef, seed: int, root: str) -> ArtifactRef:
    """The untrained (tiny) or pretrained backbone as a safetensors checkpoint."""

    def build(out: Path) -> None:
        from varreason import modeling

        with timed(out) as st:
            if model.kind == "tiny":
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(task.verify() / "tokenizer")
                net = modeling.build_tiny_model(model, tok, seed)
            else:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                net = AutoModelForCausalLM.from_pretrained(model.name_or_path, use_safetensors=True,
                                                           trust_remote_code=model.trust_remote_code)
                tok = AutoTokenizer.from_pretrained(model.name_or_path, trust_remote_code=model.trust_remote_code)
            modeling.save_checkpoint(net, tok, out)
            st.update(n_params=modeling.n_params(net))

    return produce(root, "backbone", {"model": model, "task": task.sha, "seed": seed}, build)


def build_seed_set(prompt: PromptConfig, task: ArtifactRef, role: str, root: str) -> ArtifactRef:
    """examples.parquet of the gold traces: reasoner prompt -> trace + solution, or posterior prompt (with the
    answer hint) -> trace."""
    if role not in ("reasoner", "posterior"):
        raise ValueError(f"role must be 'reasoner' or 'posterior', got {role!r}")

    def build(out: Path) -> None:
        with timed(out) as st:
            seeds = [q for q in questions(task, "train") if q["gold_trace"]]
            rows = [seed_example(prompt, q, role) for q in seeds]
            write_rows(out / "examples.parquet", rows)
            st.update(n_examples=len(rows))

    return produce(root, "seed-set", {"prompt": prompt, "task": task.sha, "role": role}, build)


def seed_example(prompt: PromptConfig, q: dict, role: str) -> dict:
    if role == "reasoner":
        return {"qid": q["id"], "prompt": reasoner_prompt(prompt, q["question"]),
                "response": full_response(prompt, q["gold_trace"], reference_solution(q)), "weight": 1.0}
    return {"qid": q["id"], "prompt": posterior_prompt(prompt, q["question"], hint_of(q)),
            "response": trace_target(prompt, q["gold_trace"]), "weight": 1.0}
