"""The GRPO baseline's training set (method.md §7): the round's samples from pi with group-normalised advantages
and the per-token log-probs of the policy that drew them. A builder of the step table (``varreason.steps``).

How this GRPO differs from DeepSeek's (arXiv 2402.03300) and from TRL's online trainer: the samples are drawn once
per round (``baselines.rft_samples`` per question, the very samples RFT keeps its correct ones from in round 1),
then ``train.steps`` optimizer steps of the clipped surrogate (``objectives.grpo_loss``) run on them, with the
ratio against the sampling policy scored untempered (temperature 1, as every log-prob of this project; the
samples themselves were drawn at the sampling temperature); no KL penalty. So EM, RFT and GRPO see the same
samples per question and the same optimizer steps per round.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from varreason.io import ArtifactRef, write_rows
from varreason.objectives import group_advantages
from varreason.pipeline.common import by_question, device, load_model, questions, timed
from varreason.pipeline.seeds import seed_rows
from varreason.prompts import reasoner_prompt
from varreason.scoring import score


def build_grpo_set(out: Path, c, responses: ArtifactRef, pi: ArtifactRef, task: ArtifactRef, *,
                   progress: bool = True) -> None:
    """examples.parquet: every sampled response of a question whose group is not flat (some right, some wrong),
    as sampled (``text``), weight 1, its ``advantage`` (``objectives.group_advantages`` of the grader's 0/1
    rewards) and ``old_logp`` (log-prob under ``pi`` of each response token and the eos the trainer appends);
    a flat group carries no signal and is left out (``n_flat_groups``). With ``objective.mix_seed_data`` the seed
    traces follow with advantage 1 and ``old_logp`` NaN, which the objective trains as plain SFT."""
    prompt = c.prompt
    with timed(out) as st:
        qs = {q["id"]: q for q in questions(task, "train")}
        qids, by_q = by_question(responses)
        adv, st_a = group_advantages(torch.tensor([[float(r["correct"]) for r in by_q[q]] for q in qids]))  # [B, G]
        kept = [(r, float(adv[b, j])) for b, q in enumerate(qids) for j, r in enumerate(by_q[q]) if adv[b, j] != 0]
        net, tok = load_model(pi, c.model)
        enc = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
        ctx = [enc(reasoner_prompt(prompt, qs[r["qid"]]["question"])) for r, _ in kept]
        tgt = [enc(r["text"]) + [tok.eos_token_id] for r, _ in kept]
        old = score(net, ctx, tgt, pad_id=tok.pad_token_id, device=device(), progress=progress)
        out_rows = [{"qid": r["qid"], "prompt": reasoner_prompt(prompt, qs[r["qid"]]["question"]),
                     "response": r["text"], "weight": 1.0, "advantage": a, "old_logp": lp}
                    for (r, a), lp in zip(kept, old)]
        st.update(st_a, n_responses=sum(len(v) for v in by_q.values()), n_kept=len(out_rows),
                  n_positive=sum(a > 0 for _, a in kept), tokens_scored=sum(len(x) + len(y) for x, y in zip(ctx, tgt)))
        if c.objective.mix_seed_data:
            out_rows += [{**s, "advantage": 1.0, "old_logp": [math.nan] * (len(enc(s["response"])) + 1)}
                         for s in seed_rows(prompt, task, "reasoner")]
        write_rows(out / "examples.parquet", out_rows)
        st.update(n_examples=len(out_rows))
