"""The task data (questions and splits; the embedded task's tokenizer). A builder of the step table
(``varreason.steps``): it writes its artifact into ``out``; ``c`` is the config view of the keys its row reads."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from varreason import arith
from varreason.io import write_rows
from varreason.pipeline.common import timed


def build_task(out: Path, c) -> None:
    """questions.parquet (id, question, answer, level, split, gold_trace; Bespoke adds solution, hint, grader) and,
    for the embedded task, the character tokenizer it defines (a pretrained backbone brings its own)."""
    data = c.data
    if data.task == "bespoke":
        return _build_bespoke(out, data, c.seed)
    with timed(out) as st:
        qs = arith.generate(data.n_train, data.n_heldout, data.n_seed_traces, data.levels, data.max_operand, c.seed,
                            data.ops, data.modulus)
        write_rows(out / "questions.parquet", [asdict(q) for q in qs])
        from varreason.modeling import build_char_tokenizer

        build_char_tokenizer(arith.charset(data.max_operand), c.prompt).save_pretrained(out / "tokenizer")
        st.update(n_train=data.n_train, n_heldout=data.n_heldout, n_seed=data.n_seed_traces, modulus=data.modulus)


def _build_bespoke(out: Path, data, seed: int) -> None:
    from varreason import bespoke

    with timed(out) as st:
        src = bespoke.load_rows(data.dataset)
        qs = bespoke.questions(src, data.n_train, data.n_heldout, data.n_seed_traces, seed)
        write_rows(out / "questions.parquet", [{**q, "grader": "math"} for q in qs])
        n_seed = sum(q["gold_trace"] is not None for q in qs)
        st.update(n_train=data.n_train, n_heldout=data.n_heldout, n_seed=n_seed,
                  n_seed_empty=data.n_seed_traces - n_seed, n_code=sum(not q["answer"] for q in qs),
                  n_duplicate_questions=bespoke.duplicate_questions(src), dataset=data.dataset)
