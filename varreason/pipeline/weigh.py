"""Scoring (step c), weights (d) and training-set builds (e), plus the RFT and posterior-refresh sets."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from varreason import arith
from varreason import weights as W
from varreason.config import ModelConfig, ObjectiveConfig, PromptConfig
from varreason.estimators import ESTIMATORS, EstimatorInputs
from varreason.io import ArtifactRef, produce, write_rows
from varreason.pipeline.common import device, load_model, questions, rows, stats, timed
from varreason.pipeline.data import seed_example
from varreason.prompts import (answer_target, full_response, hint_of, posterior_prompt, reasoner_prompt,
                               reference_solution, trace_target)
from varreason.scoring import score
from varreason.selection import SELECTIONS, ScoredTrace
from varreason.shards import Shard, in_shard, shard_key


def score_traces(model: ModelConfig, prompt: PromptConfig, reasoner: ArtifactRef, posterior: ArtifactRef,
                 traces: ArtifactRef, task: ArtifactRef, temperature: float, root: str, progress: bool = True,
                 shard: Shard | None = None) -> ArtifactRef:
    """scores.parquet: per finished trace (of ``shard``'s questions when given), token log-probs of the trace
    under pi (``think_pi``) and q (``think_q``), and of the reference answer after the trace under pi
    (``answer_pi``, GML). Both models are scored at ``temperature`` (1.0 = the reference's untempered density)."""

    def build(out: Path) -> None:
        qs = {q["id"]: q for q in in_shard(questions(task, "train"), shard)}
        trs = [t for t in rows(traces, "traces.parquet") if t["finished"] and t["qid"] in qs]
        with timed(out, temperature=temperature) as st:
            pi, tok = load_model(reasoner, model)
            enc = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
            think = [enc(trace_target(prompt, t["trace"])) for t in trs]
            answer = [enc(answer_target(prompt, reference_solution(qs[t["qid"]]))) for t in trs]
            ctx_pi = [enc(reasoner_prompt(prompt, qs[t["qid"]]["question"])) for t in trs]
            # One pass of pi scores trace and answer together; ids are concatenated, so the split is exact.
            both = score(pi, ctx_pi, [a + b for a, b in zip(think, answer)], pad_id=tok.pad_token_id,
                         device=device(), progress=progress, temperature=temperature)
            del pi
            q, _ = load_model(posterior, model)
            ctx_q = [enc(posterior_prompt(prompt, qs[t["qid"]]["question"], hint_of(qs[t["qid"]]))) for t in trs]
            think_q = score(q, ctx_q, think, pad_id=tok.pad_token_id, device=device(), progress=progress,
                            temperature=temperature)
            out_rows = [{"qid": t["qid"], "k": t["k"], "think_pi": lp[: len(z)], "answer_pi": lp[len(z):],
                         "think_q": lq} for t, z, lp, lq in zip(trs, think, both, think_q)]
            write_rows(out / "scores.parquet", out_rows)
            st.update(tokens_scored=sum(len(c) + len(z) + len(a) for c, z, a in zip(ctx_pi, think, answer))
                      + sum(len(c) + len(z) for c, z in zip(ctx_q, think)))

    key = {"model": model, "prompt": prompt, "reasoner": reasoner.sha, "posterior": posterior.sha,
           "traces": traces.sha, "task": task.sha, "temperature": temperature, **shard_key(shard)}
    return produce(root, "scores", key, build)


def _padded(seqs: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max([len(s) for s in seqs] + [1])
    x = torch.zeros((len(seqs), width), dtype=torch.float64)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.tensor(s, dtype=torch.float64)
    return x, torch.tensor([len(s) for s in seqs])


def weigh_traces(estimator: str, traces: ArtifactRef, scores: ArtifactRef, answers: ArtifactRef | None,
                 root: str, *, trace_cutoff: int) -> ArtifactRef:
    """weights.parquet (per trace: shared_len, log_ratio, log_lik, log_rho, rho_tilde) and questions.parquet
    (per question: iwae, elbo, ess). Unfinished traces enter with weight 0 so K stays the number of draws.
    rho_tilde, the bounds and the ESS are over the traces selection may use (``weights.within_cutoff``);
    ``log_rho`` is every trace's own (``n_over_cutoff`` counts the difference).

    Policies for bad model outputs, each counted in this step's stats.json:

    * no end-of-thought marker (``finished = False``): weight 0 (``n_unfinished``);
    * a NaN log-prob, or -inf under q, in the shared span: the trace is invalid, weight 0 (``n_invalid_ratio``);
      a NaN answer log-prob (GML) likewise (``n_invalid``); every zero-weight trace: ``n_zero_weight``;
    * an empty trace (the marker straight away): kept and weighed like any other, since answering without
      thinking is a valid proposal whose weight says how good it is (``n_empty_traces``);
    * every trace of a question at weight 0 (e.g. all answers wrong under Acc): rho~ = 0 for the question, no
      NaN (``n_dead_questions``); the training-set build then falls back to its gold trace or drops it.
    """
    if estimator == "acc" and answers is None:
        raise ValueError("estimator 'acc' needs the answer rollouts")

    def build(out: Path) -> None:
        with timed(out, estimator=estimator) as st:
            trs = rows(traces, "traces.parquet")
            sc = {(r["qid"], r["k"]): r for r in rows(scores, "scores.parquet")}
            ans = {(r["qid"], r["k"]): r for r in rows(answers, "answers.parquet")} if answers else {}
            qids = sorted({t["qid"] for t in trs})
            K = max(t["k"] for t in trs) + 1
            keys = [(q, k) for q in qids for k in range(K)]
            live = [kk in sc for kk in keys]
            empty = {"think_pi": [], "think_q": [], "answer_pi": []}
            srows = [sc.get(kk, empty) for kk in keys]
            lp_pi, n_pi = _padded([r["think_pi"] for r in srows])
            lp_q, n_q = _padded([r["think_q"] for r in srows])
            d, st_d = W.length_normalised_log_ratio(lp_pi, n_pi, lp_q, n_q)  # [B*K]
            m = max([len(a["correct"]) for a in ans.values()] + [1])
            correct = torch.tensor([ans[kk]["correct"] if kk in ans else [False] * m for kk in keys],
                                   dtype=torch.float64)
            a_lp, a_n = _padded([r["answer_pi"] for r in srows])
            log_lik, st_e = ESTIMATORS[estimator](EstimatorInputs(correct=correct, answer_logps=a_lp, answer_len=a_n))
            log_lik = torch.where(torch.tensor(live), log_lik, torch.full_like(log_lik, float("-inf")))
            lr, st_r = W.log_rho(log_lik.view(len(qids), K), d.view(len(qids), K))  # [B, K]
            shared = torch.minimum(n_pi, n_q).view(len(qids), K)
            usable, st_c = W.within_cutoff(lr, shared, trace_cutoff)  # [B, K]: what selection may train on
            rt, st_n = W.self_normalise(usable)
            iw, st_i = W.iwae_bound(usable)
            el, st_l = W.elbo(usable)
            # The means above skip -inf entries, and a question with one zero-weight trace has ELBO -inf but a
            # finite IWAE bound, so compare the two bounds over the same questions: where both are finite.
            both = iw.isfinite() & el.isfinite()
            st_l["n_bound_questions"] = float(both.sum())
            if both.any():
                st_i["iwae_mean"], st_l["elbo_mean"] = float(iw[both].mean()), float(el[both].mean())
            ess, st_s = W.effective_sample_size(rt)
            flat = []
            for b, q in enumerate(qids):
                for k in range(K):
                    flat.append({"qid": q, "k": k, "shared_len": int(shared[b, k]), "log_ratio": float(d[b * K + k]),
                                 "log_lik": float(log_lik[b * K + k]), "log_rho": float(lr[b, k]),
                                 "rho_tilde": float(rt[b, k])})
            write_rows(out / "weights.parquet", flat)
            write_rows(out / "questions.parquet", [{"qid": q, "iwae": float(iw[b]), "elbo": float(el[b]),
                                                     "ess": float(ess[b])} for b, q in enumerate(qids)])
            st.update(K=K, n_questions=len(qids), n_unfinished=sum(not x for x in live),
                      n_empty_traces=sum(bool(t["finished"]) and not t["trace"].strip() for t in trs),
                      n_invalid_ratio=st_d["n_invalid"], **st_e, **st_r, **st_c, **st_n, **st_i, **st_l, **st_s)

    key = {"estimator": estimator, "traces": traces.sha, "scores": scores.sha,
           "answers": answers.sha if answers else None, "trace_cutoff": trace_cutoff}
    return produce(root, "weights", key, build)


def _exact_fraction(task: ArtifactRef, qs: dict[str, dict], picked: list[tuple[str, str]]) -> float:
    """Diagnostic only (never used for selection): the share of picked (qid, trace) whose every step is right,
    not only the final answer. Right answers reached through wrong steps are what weights must filter out."""
    if not picked:
        return 0.0
    if any(q.get("grader") for q in qs.values()):  # no step-level gold outside the tiny task
        return float("nan")
    mod = stats(task).get("modulus")
    return sum(arith.trace_is_exact(qs[q]["question"], t, mod) for q, t in picked) / len(picked)


def _seed_rows(prompt: PromptConfig, task: ArtifactRef, role: str) -> list[dict]:
    return [seed_example(prompt, q, role) for q in questions(task, "train") if q["gold_trace"]]


def build_reasoner_set(objective: ObjectiveConfig, estimator: str, prompt: PromptConfig, weights: ArtifactRef,
                       traces: ArtifactRef, answers: ArtifactRef | None, task: ArtifactRef, root: str
                       ) -> ArtifactRef:
    """examples.parquet for the reasoner: the selection (``top1`` or ``weighted``) of posterior traces, each
    followed by the reference solution (GML) or pi's first verified-correct answer (Acc), mixed with the seed
    data when ``objective.mix_seed_data``."""

    def build(out: Path) -> None:
        with timed(out, selection=objective.selection) as st:
            qs = {q["id"]: q for q in questions(task, "train")}
            text = {(t["qid"], t["k"]): t["trace"] for t in rows(traces, "traces.parquet")}
            firsts = {(a["qid"], a["k"]): a["first_correct"] for a in rows(answers, "answers.parquet")} if answers else {}
            scored = []
            for w in rows(weights, "weights.parquet"):
                kk = (w["qid"], w["k"])
                sol = firsts.get(kk) if estimator == "acc" else reference_solution(qs[w["qid"]])
                if sol is None and math.isfinite(w["log_rho"]):
                    raise ValueError(f"trace {kk} has weight but no verified answer; the answers artifact is stale")
                scored.append(ScoredTrace(w["qid"], w["k"], text[kk], w["shared_len"], w["log_rho"],
                                          w["rho_tilde"], sol or ""))
            gold = {q["id"]: (q["gold_trace"], reference_solution(q)) for q in qs.values() if q["gold_trace"]}
            chosen, st_sel = SELECTIONS[objective.selection](scored, objective.trace_cutoff, gold)
            st_sel["frac_exact_traces"] = _exact_fraction(task, qs, [(c.qid, c.trace) for c in chosen if c.source >= 0])
            out_rows = [{"qid": c.qid, "prompt": reasoner_prompt(prompt, qs[c.qid]["question"]),
                         "response": full_response(prompt, c.trace, c.solution), "weight": c.weight} for c in chosen]
            if objective.mix_seed_data:
                out_rows += _seed_rows(prompt, task, "reasoner")
            write_rows(out / "examples.parquet", out_rows)
            st.update(st_sel, n_examples=len(out_rows))

    key = {"objective": objective, "estimator": estimator, "prompt": prompt, "weights": weights.sha,
           "traces": traces.sha, "answers": answers.sha if answers else None, "task": task.sha}
    return produce(root, "reasoner-set", key, build)


def _trace_of(prompt: PromptConfig, response: str) -> str:
    return response.split(prompt.end_of_thought, 1)[0]


def build_rft_set(prompt: PromptConfig, responses: ArtifactRef, task: ArtifactRef, mix_seed_data: bool,
                  root: str) -> ArtifactRef:
    """RFT: the first verified-correct response per question (one example per question, like ``top1``)."""

    def build(out: Path) -> None:
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
            if mix_seed_data:
                out_rows += _seed_rows(prompt, task, "reasoner")
            write_rows(out / "examples.parquet", out_rows)
            st.update(n_examples=len(out_rows))

    return produce(root, "rft-set", {"prompt": prompt, "responses": responses.sha, "task": task.sha,
                                     "mix": mix_seed_data}, build)


def build_posterior_set(prompt: PromptConfig, responses: ArtifactRef, task: ArtifactRef, root: str) -> ArtifactRef:
    """Forward-KL refresh data (method.md §6): traces z_j ~ pi(z|x) with weight pi^(Y|x,z_j) / sum_i pi^(Y|x,z_i),
    where pi^(Y|x,z_j) is the verified correctness of the answer sampled with z_j (a one-rollout estimate),
    as posterior examples (prompt with hint -> trace), plus the seed traces with weight 1."""

    def build(out: Path) -> None:
        with timed(out) as st:
            qs = {q["id"]: q for q in questions(task, "train")}
            by_q: dict[str, list[dict]] = {}
            for r in rows(responses, "responses.parquet"):
                by_q.setdefault(r["qid"], []).append(r)
            qids = sorted(by_q)
            n = max(len(v) for v in by_q.values())
            p = torch.tensor([[float(r["correct"]) for r in by_q[q]] + [0.0] * (n - len(by_q[q])) for q in qids])
            w, st_w = W.forward_kl_weights(p)  # [B, n]
            out_rows = []
            for b, q in enumerate(qids):
                for j, r in enumerate(by_q[q]):
                    if w[b, j] > 0:
                        out_rows.append({"qid": q, "prompt": posterior_prompt(prompt, qs[q]["question"], hint_of(qs[q])),
                                         "response": trace_target(prompt, r["trace"]), "weight": float(w[b, j])})
            st.update(st_w, n_refresh=len(out_rows))
            out_rows += _seed_rows(prompt, task, "posterior")
            write_rows(out / "examples.parquet", out_rows)
            st.update(n_examples=len(out_rows))

    return produce(root, "posterior-set", {"prompt": prompt, "responses": responses.sha, "task": task.sha}, build)
