"""Scoring (step c): token log-probs of each posterior trace under pi and q, and of the reference answer after
the trace under pi (GML). A builder of the step table (``varreason.steps``)."""

from __future__ import annotations

from pathlib import Path

from varreason.io import ArtifactRef, write_rows
from varreason.pipeline.common import device, load_model, questions, rows, timed
from varreason.prompts import answer_target, hint_of, posterior_prompt, reasoner_prompt, reference_solution, trace_target
from varreason.scoring import score
from varreason.shards import Shard, in_shard
from varreason.rounds import score_temperature


def score_traces(out: Path, c, pi: ArtifactRef, q: ArtifactRef, traces: ArtifactRef, task: ArtifactRef, *,
                 progress: bool = True, shard: Shard | None = None) -> None:
    """scores.parquet: per finished trace (of ``shard``'s questions when given), token log-probs of the trace
    under pi (``think_pi``) and q (``think_q``), and of the reference answer after the trace under pi
    (``answer_pi``, GML). Both models are scored at ``rounds.score_temperature`` (1.0 = the reference's
    untempered density; the sampling temperature when ``objective.proposal_density`` is ``tempered``)."""
    prompt, temperature = c.prompt, score_temperature(c)
    qs = {x["id"]: x for x in in_shard(questions(task, "train"), shard)}
    trs = [t for t in rows(traces, "traces.parquet") if t["finished"] and t["qid"] in qs]
    with timed(out, temperature=temperature) as st:
        net, tok = load_model(pi, c.model)
        enc = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
        think = [enc(trace_target(prompt, t["trace"])) for t in trs]
        answer = [enc(answer_target(prompt, reference_solution(qs[t["qid"]]))) for t in trs]
        ctx_pi = [enc(reasoner_prompt(prompt, qs[t["qid"]]["question"])) for t in trs]
        # One pass of pi scores trace and answer together; ids are concatenated, so the split is exact.
        both = score(net, ctx_pi, [a + b for a, b in zip(think, answer)], pad_id=tok.pad_token_id,
                     device=device(), progress=progress, temperature=temperature)
        del net
        net_q, _ = load_model(q, c.model)
        ctx_q = [enc(posterior_prompt(prompt, qs[t["qid"]]["question"], hint_of(qs[t["qid"]]))) for t in trs]
        think_q = score(net_q, ctx_q, think, pad_id=tok.pad_token_id, device=device(), progress=progress,
                        temperature=temperature)
        out_rows = [{"qid": t["qid"], "k": t["k"], "think_pi": lp[: len(z)], "answer_pi": lp[len(z):],
                     "think_q": lq} for t, z, lp, lq in zip(trs, think, both, think_q)]
        write_rows(out / "scores.parquet", out_rows)
        st.update(tokens_scored=sum(len(x) + len(z) + len(a) for x, z, a in zip(ctx_pi, think, answer))
                  + sum(len(x) + len(z) for x, z in zip(ctx_q, think)))
