"""Sampling steps: K traces per question from q_phi (step b), M answer rollouts per trace from pi (Acc estimator,
step c), and n full responses per question from pi (posterior refresh, RFT). Builders of the step table
(``varreason.steps``): each writes its artifact into ``out``; ``c`` is the config view of the keys its row reads.

Every sampled token is drawn with a seed fixed by (run seed, purpose, question, sample), never by batch, so a
shard of the questions draws what the whole pass draws for them. Log-probs are not stored here: the weights
score traces in a separate pass (``pipeline/score.py``) under the density ``objective.proposal_density`` names.
"""

from __future__ import annotations

from pathlib import Path

from varreason.backends.base import SamplingParams, stable_seed
from varreason.io import ArtifactRef, write_rows
from varreason.pipeline.common import device, questions, rows, timed
from varreason.prompts import hint_of, parse_response, posterior_prompt, reasoner_prompt, trace_target
from varreason.shards import Shard, in_shard


def make_sampler(c, ckpt: ArtifactRef, progress: bool = True):
    """The backend ``sampling.backend`` names over checkpoint ``ckpt`` (verified first)."""
    from varreason.backends import build_sampler

    s = c.sampling
    return build_sampler(ckpt.verify(), c.model, s.backend, s.batch_size, device(), s.tensor_parallel_size,
                         progress, s.gpu_memory_utilization)


def grade(q: dict, solution: str | None) -> bool:
    """The dataset's one grader (``eval.grader.GRADERS``, the one its lm-eval task uses) on a solution block."""
    from varreason.eval.grader import grader_of

    return solution is not None and grader_of(q)(q["answer"], solution).correct


def sample_traces(out: Path, c, q: ArtifactRef, task: ArtifactRef, *, rnd: int, progress: bool = True,
                  shard: Shard | None = None) -> None:
    """traces.parquet: K traces z ~ q_phi(z | x, hint) per training question (those of ``shard``, a range of the
    train split, when given). A trace that never closes its thought is kept with ``finished = False`` and gets
    weight 0 downstream (counted as ``n_unfinished``); an empty one (the marker straight away) is kept and counted
    as ``n_empty``."""
    s, prompt = c.sampling, c.prompt
    qs = in_shard(questions(task, "train"), shard)
    sampler = make_sampler(c, q, progress)
    params = SamplingParams(n=s.traces_per_question, temperature=s.temperature, top_p=s.top_p,
                            max_new_tokens=s.max_trace_tokens, stop=(prompt.end_of_thought,))
    with timed(out) as st:
        res = sampler.generate([posterior_prompt(prompt, x["question"], hint_of(x)) for x in qs], params,
                               [stable_seed(c.seed, "trace", rnd, x["id"]) for x in qs])
        out_rows = [{"qid": x["id"], "k": k, "trace": comp.text, "finished": comp.finish_reason == "stop"}
                    for x, comps in zip(qs, res.completions) for k, comp in enumerate(comps)]
        write_rows(out / "traces.parquet", out_rows)
        st.update(tokens_generated=res.n_generated, n_traces=len(out_rows),
                  n_unfinished=sum(not r["finished"] for r in out_rows),
                  n_empty=sum(r["finished"] and not r["trace"].strip() for r in out_rows))


def rollout_answers(out: Path, c, pi: ArtifactRef, traces: ArtifactRef, task: ArtifactRef, *, progress: bool = True,
                    shard: Shard | None = None) -> None:
    """answers.parquet: M answers y ~ pi(y | x, z_k) per finished trace (of ``shard``'s questions when given),
    continuing after the end-of-thought marker, each verified by the task's grader; ``first_correct`` is the
    solution the Acc variant trains on."""
    s, prompt = c.sampling, c.prompt
    answer_of = {x["id"]: x for x in in_shard(questions(task, "train"), shard)}
    trs = [t for t in rows(traces, "traces.parquet") if t["finished"] and t["qid"] in answer_of]
    sampler = make_sampler(c, pi, progress)
    params = SamplingParams(n=s.answer_rollouts, temperature=s.temperature, top_p=s.top_p,
                            max_new_tokens=s.max_answer_tokens, stop=(prompt.end_of_solution,))
    prompts = [reasoner_prompt(prompt, answer_of[t["qid"]]["question"]) + trace_target(prompt, t["trace"])
               for t in trs]
    with timed(out) as st:
        res = sampler.generate(prompts, params, [stable_seed(c.seed, "answer", t["qid"], t["k"]) for t in trs])
        out_rows = []
        for t, comps in zip(trs, res.completions):
            sols = [parse_response(prompt, prompt.end_of_thought + comp.text + prompt.end_of_solution).solution
                    for comp in comps]
            ok = [grade(answer_of[t["qid"]], sol) for sol in sols]
            first = next((sol for sol, good in zip(sols, ok) if good), None)
            out_rows.append({"qid": t["qid"], "k": t["k"], "correct": ok, "first_correct": first})
        write_rows(out / "answers.parquet", out_rows)
        st.update(tokens_generated=res.n_generated, n_rollouts=len(trs) * params.n)


def sample_refresh(out: Path, c, pi: ArtifactRef, task: ArtifactRef, *, rnd: int, progress: bool = True,
                   shard: Shard | None = None) -> None:
    """The posterior refresh's samples: K = ``sampling.traces_per_question`` responses per question from pi_r."""
    _responses(out, c, pi, task, c.sampling.traces_per_question, f"refresh-r{rnd}", progress, shard)


def sample_rft(out: Path, c, pi: ArtifactRef, task: ArtifactRef, *, rnd: int, progress: bool = True,
               shard: Shard | None = None) -> None:
    """RFT's samples: ``baselines.rft_samples`` responses per question from the round's reasoner."""
    _responses(out, c, pi, task, c.baselines.rft_samples, f"rft-r{rnd}", progress, shard)


def _responses(out: Path, c, pi: ArtifactRef, task: ArtifactRef, n: int, purpose: str, progress: bool,
               shard: Shard | None) -> None:
    """responses.parquet: n full responses per training question (of ``shard``, a range of them, when given) from
    pi, at the sampling temperature: the text as sampled (``text``, with its end marker when it stopped) and its
    trace and solution, graded. Responses without an end-of-thought or a
    solution block count as wrong (``parsed = False``, counted as ``n_unparsed``)."""
    s, prompt = c.sampling, c.prompt
    qs = in_shard(questions(task, "train"), shard)
    sampler = make_sampler(c, pi, progress)
    params = SamplingParams(n=n, temperature=s.temperature, top_p=s.top_p,
                            max_new_tokens=s.max_trace_tokens + s.max_answer_tokens, stop=(prompt.end_of_solution,))
    with timed(out) as st:
        res = sampler.generate([reasoner_prompt(prompt, x["question"]) for x in qs], params,
                               [stable_seed(c.seed, purpose, x["id"]) for x in qs])
        out_rows = []
        for x, comps in zip(qs, res.completions):
            for j, comp in enumerate(comps):
                text = comp.text + (prompt.end_of_solution if comp.finish_reason == "stop" else "")
                parsed = parse_response(prompt, text)
                out_rows.append({"qid": x["id"], "level": x["level"], "j": j, "text": text, "trace": parsed.trace,
                                 "solution": parsed.solution, "parsed": parsed.solution is not None,
                                 "correct": grade(x, parsed.solution)})
        write_rows(out / "responses.parquet", out_rows)
        st.update(tokens_generated=res.n_generated, n_responses=len(out_rows),
                  n_unparsed=sum(not r["parsed"] for r in out_rows),
                  accuracy=sum(r["correct"] for r in out_rows) / max(1, len(out_rows)))
