"""Sampling steps: K traces per question from q_phi (step b), M answer rollouts per trace from pi (Acc
estimator, step c), and n full responses per question from pi (RFT, posterior refresh, evaluation)."""

from __future__ import annotations

from pathlib import Path

from varreason.backends.base import SamplingParams, stable_seed
from varreason.config import ModelConfig, PromptConfig, SamplingConfig
from varreason.io import ArtifactRef, produce, write_rows
from varreason.pipeline.common import grade, make_sampler, questions, rows, timed
from varreason.prompts import hint_of, parse_response, posterior_prompt, reasoner_prompt, trace_target
from varreason.shards import Shard, in_shard, shard_key


def sample_traces(sampling: SamplingConfig, model: ModelConfig, prompt: PromptConfig, posterior: ArtifactRef,
                  task: ArtifactRef, seed: int, round_: int, root: str, progress: bool = True,
                  shard: Shard | None = None) -> ArtifactRef:
    """traces.parquet: K traces z ~ q_phi(z | x, hint) per training question (those of ``shard``, a range of the
    train split, when given), with each token's log-prob under the sampled (tempered) and the untempered
    posterior. A trace that never closes its thought is kept with ``finished = False`` and gets weight 0
    downstream (counted as ``n_unfinished``); an empty one (the marker straight away) is kept and counted as
    ``n_empty``."""

    def build(out: Path) -> None:
        qs = in_shard(questions(task, "train"), shard)
        sampler = make_sampler(sampling, model, posterior, progress)
        params = SamplingParams(n=sampling.traces_per_question, temperature=sampling.temperature,
                                top_p=sampling.top_p, max_new_tokens=sampling.max_trace_tokens,
                                stop=(prompt.end_of_thought,))
        with timed(out) as st:
            res = sampler.generate([posterior_prompt(prompt, q["question"], hint_of(q)) for q in qs], params,
                                   [stable_seed(seed, "trace", round_, q["id"]) for q in qs])
            out_rows = [{"qid": q["id"], "k": k, "trace": c.text, "finished": c.finish_reason == "stop",
                         "logp_sampling": c.logp_sampling}
                        for q, comps in zip(qs, res.completions) for k, c in enumerate(comps)]
            write_rows(out / "traces.parquet", out_rows)
            st.update(tokens_generated=res.n_generated, n_traces=len(out_rows),
                      n_unfinished=sum(not r["finished"] for r in out_rows),
                      n_empty=sum(r["finished"] and not r["trace"].strip() for r in out_rows))

    key = {"sampling": sampling, "model": model, "prompt": prompt, "posterior": posterior.sha, "task": task.sha,
           "seed": seed, "round": round_, **shard_key(shard)}
    return produce(root, "traces", key, build)


def rollout_answers(sampling: SamplingConfig, model: ModelConfig, prompt: PromptConfig, reasoner: ArtifactRef,
                    traces: ArtifactRef, task: ArtifactRef, seed: int, root: str, progress: bool = True,
                    shard: Shard | None = None) -> ArtifactRef:
    """answers.parquet: M answers y ~ pi(y | x, z_k) per finished trace (of ``shard``'s questions when given),
    continuing after the end-of-thought marker, each verified by the task's grader; ``first_correct`` is the
    solution the Acc variant trains on."""

    def build(out: Path) -> None:
        answer_of = {q["id"]: q for q in in_shard(questions(task, "train"), shard)}
        trs = [t for t in rows(traces, "traces.parquet") if t["finished"] and t["qid"] in answer_of]
        sampler = make_sampler(sampling, model, reasoner, progress)
        params = SamplingParams(n=sampling.answer_rollouts, temperature=sampling.temperature,
                                top_p=sampling.top_p, max_new_tokens=sampling.max_answer_tokens,
                                stop=(prompt.end_of_solution,))
        prompts = [reasoner_prompt(prompt, answer_of[t["qid"]]["question"]) + trace_target(prompt, t["trace"])
                   for t in trs]
        with timed(out) as st:
            res = sampler.generate(prompts, params, [stable_seed(seed, "answer", t["qid"], t["k"]) for t in trs])
            out_rows = []
            for t, comps in zip(trs, res.completions):
                sols = [parse_response(prompt, prompt.end_of_thought + c.text + prompt.end_of_solution).solution
                        for c in comps]
                ok = [grade(answer_of[t["qid"]], s) for s in sols]
                first = next((s for s, good in zip(sols, ok) if good), None)
                out_rows.append({"qid": t["qid"], "k": t["k"], "correct": ok, "first_correct": first})
            write_rows(out / "answers.parquet", out_rows)
            st.update(tokens_generated=res.n_generated, n_rollouts=len(trs) * params.n)

    key = {"sampling": sampling, "model": model, "prompt": prompt, "reasoner": reasoner.sha, "traces": traces.sha,
           "task": task.sha, "seed": seed, **shard_key(shard)}
    return produce(root, "answers", key, build)


def sample_responses(sampling: SamplingConfig, model: ModelConfig, prompt: PromptConfig, reasoner: ArtifactRef,
                     task: ArtifactRef, split: str, n: int, temperature: float, top_p: float, max_new_tokens: int,
                     seed: int, purpose: str, root: str, progress: bool = True, shard: Shard | None = None
                     ) -> ArtifactRef:
    """responses.parquet: n full responses (trace + solution) per question of ``split`` (of ``shard``, a range
    of it, when given) from pi, graded. Responses without an end-of-thought or a solution block count as wrong
    (``parsed = False``, counted as ``n_unparsed``)."""

    def build(out: Path) -> None:
        qs = in_shard(questions(task, split), shard)
        sampler = make_sampler(sampling, model, reasoner, progress)
        params = SamplingParams(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                stop=(prompt.end_of_solution,))
        with timed(out) as st:
            res = sampler.generate([reasoner_prompt(prompt, q["question"]) for q in qs], params,
                                   [stable_seed(seed, purpose, q["id"]) for q in qs])
            out_rows = []
            for q, comps in zip(qs, res.completions):
                for j, c in enumerate(comps):
                    parsed = parse_response(prompt, c.text + (prompt.end_of_solution if c.finish_reason == "stop"
                                                              else ""))
                    out_rows.append({"qid": q["id"], "level": q["level"], "j": j, "trace": parsed.trace,
                                     "solution": parsed.solution, "parsed": parsed.solution is not None,
                                     "correct": grade(q, parsed.solution)})
            write_rows(out / "responses.parquet", out_rows)
            st.update(tokens_generated=res.n_generated, n_responses=len(out_rows),
                      n_unparsed=sum(not r["parsed"] for r in out_rows),
                      accuracy=sum(r["correct"] for r in out_rows) / max(1, len(out_rows)))

    engine = {"backend": sampling.backend, "batch_size": sampling.batch_size, "tp": sampling.tensor_parallel_size}
    key = {"engine": engine, "model": model, "prompt": prompt, "reasoner": reasoner.sha, "task": task.sha,
           "split": split, "n": n, "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
           "seed": seed, "purpose": purpose, **shard_key(shard)}
    return produce(root, "responses", key, build)
