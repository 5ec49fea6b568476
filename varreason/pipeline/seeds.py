"""The seed SFT sets of pi_theta0 and q_phi0 (step a): the gold traces as reasoner or posterior examples. A
builder of the step table (``varreason.steps``); ``seed_rows`` also serves the training sets that mix the seed
data back in."""

from __future__ import annotations

from pathlib import Path

from varreason.io import ArtifactRef, write_rows
from varreason.pipeline.common import questions, timed
from varreason.prompts import full_response, hint_of, posterior_prompt, reasoner_prompt, reference_solution, trace_target


def build_seed_set(out: Path, c, task: ArtifactRef, *, role: str) -> None:
    """examples.parquet of the gold traces: reasoner prompt -> trace + solution, or posterior prompt (with the
    answer hint) -> trace."""
    if role not in ("reasoner", "posterior"):
        raise ValueError(f"role must be 'reasoner' or 'posterior', got {role!r}")
    with timed(out) as st:
        rows = seed_rows(c.prompt, task, role)
        write_rows(out / "examples.parquet", rows)
        st.update(n_examples=len(rows))


def seed_rows(prompt, task: ArtifactRef, role: str) -> list[dict]:
    """The seed examples of ``role`` (one per training question that carries a gold trace)."""
    return [seed_example(prompt, q, role) for q in questions(task, "train") if q["gold_trace"]]


def seed_example(prompt, q: dict, role: str) -> dict:
    if role == "reasoner":
        return {"qid": q["id"], "prompt": reasoner_prompt(prompt, q["question"]),
                "response": full_response(prompt, q["gold_trace"], reference_solution(q)), "weight": 1.0}
    return {"qid": q["id"], "prompt": posterior_prompt(prompt, q["question"], hint_of(q)),
            "response": trace_target(prompt, q["gold_trace"]), "weight": 1.0}
