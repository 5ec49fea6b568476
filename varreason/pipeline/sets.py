"""Training sets of a round: the reasoner's (step e: the selected posterior traces, EM) and RFT's (the verified
samples of pi). Builders of the step table (``varreason.steps``): each writes its artifact into ``out``; ``c`` is the
config view of the keys its row reads."""

from __future__ import annotations

import math
from pathlib import Path

from varreason import arith
from varreason.estimators import needs_rollouts
from varreason.io import ArtifactRef, write_rows
from varreason.pipeline.common import questions, rows, stats, timed
from varreason.pipeline.seeds import seed_rows
from varreason.prompts import full_response, reasoner_prompt, reference_solution
from varreason.selection import SELECTIONS, ScoredTrace


def _exact_fraction(task: ArtifactRef, qs: dict[str, dict], picked: list[tuple[str, str]]) -> float:
    """Diagnostic only (never used for selection): the share of picked (qid, trace) whose every step is right,
    not only the final answer. Right answers reached through wrong steps are what weights must filter out."""
    if not picked:
        return 0.0
    if any(q.get("grader") for q in qs.values()):  # no step-level gold outside the tiny task
        return float("nan")
    mod = stats(task).get("modulus")
    return sum(arith.trace_is_exact(qs[q]["question"], t, mod) for q, t in picked) / len(picked)


def build_reasoner_set(out: Path, c, weights: ArtifactRef, traces: ArtifactRef, task: ArtifactRef,
                       answers: ArtifactRef | None = None, *, est: str) -> None:
    """examples.parquet for the reasoner: the selection (``top1`` or ``weighted``) of posterior traces, each
    followed by pi's first verified-correct answer (an estimator with answer rollouts: Acc, as the reference
    code does) or the reference solution (GML), mixed with the seed data when ``objective.mix_seed_data``."""
    objective, prompt = c.objective, c.prompt
    with timed(out, selection=objective.selection) as st:
        qs = {q["id"]: q for q in questions(task, "train")}
        text = {(t["qid"], t["k"]): t["trace"] for t in rows(traces, "traces.parquet")}
        firsts = {(a["qid"], a["k"]): a["first_correct"] for a in rows(answers, "answers.parquet")} if answers else {}
        scored = []
        for w in rows(weights, "weights.parquet"):
            kk = (w["qid"], w["k"])
            sol = firsts.get(kk) if needs_rollouts(est) else reference_solution(qs[w["qid"]])
            if sol is None and math.isfinite(w["log_rho"]):
                raise ValueError(f"trace {kk} has weight but no verified answer; the answers artifact is stale")
            scored.append(ScoredTrace(w["qid"], w["k"], text[kk], w["shared_len"], w["log_rho"], w["rho_tilde"],
                                      sol or ""))
        gold = {q["id"]: (q["gold_trace"], reference_solution(q)) for q in qs.values() if q["gold_trace"]}
        chosen, st_sel = SELECTIONS[objective.selection](scored, objective.trace_cutoff, gold)
        st_sel["frac_exact_traces"] = _exact_fraction(task, qs, [(x.qid, x.trace) for x in chosen if x.source >= 0])
        out_rows = [{"qid": x.qid, "prompt": reasoner_prompt(prompt, qs[x.qid]["question"]),
                     "response": full_response(prompt, x.trace, x.solution), "weight": x.weight} for x in chosen]
        if objective.mix_seed_data:
            out_rows += seed_rows(prompt, task, "reasoner")
        write_rows(out / "examples.parquet", out_rows)
        st.update(st_sel, n_examples=len(out_rows))


def _trace_of(prompt, response: str) -> str:
    return response.split(prompt.end_of_thought, 1)[0]


def build_rft_set(out: Path, c, responses: ArtifactRef, task: ArtifactRef) -> None:
    """RFT: the first verified-correct response per question (one example per question, like ``top1``)."""
    prompt = c.prompt
    with timed(out) as st:
        qs = {q["id"]: q for q in questions(task, "train")}
        seen: set[str] = set()
        out_rows = []
        for r in rows(responses, "responses.parquet"):
            if r["correct"] and r["qid"] not in seen:
                seen.add(r["qid"])
                out_rows.append({"qid": r["qid"], "prompt": reasoner_prompt(prompt, qs[r["qid"]]["question"]),
                                 "response": full_response(prompt, r["trace"], r["solution"]), "weight": 1.0})
        st.update(n_selected=len(out_rows), n_dropped=len(qs) - len(out_rows),
                  frac_exact_traces=_exact_fraction(task, qs, [(r["qid"], _trace_of(prompt, r["response"]))
                                                               for r in out_rows]))
        if c.objective.mix_seed_data:
            out_rows += seed_rows(prompt, task, "reasoner")
        write_rows(out / "examples.parquet", out_rows)
        st.update(n_examples=len(out_rows))
