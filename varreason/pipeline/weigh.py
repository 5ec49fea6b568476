"""Weights: the importance weights of a round's posterior traces (step d) and the forward-KL weights of the
posterior refresh's set (step g). Builders of the step table (``varreason.steps``): each writes its artifact into
``out``; ``c`` is the config view of the keys its row reads."""

from __future__ import annotations

from pathlib import Path

import torch

from varreason import weights as W
from varreason.estimators import ESTIMATORS, EstimatorInputs, needs_rollouts
from varreason.io import ArtifactRef, write_rows
from varreason.pipeline.common import by_question, questions, rows, timed
from varreason.pipeline.seeds import seed_rows
from varreason.prompts import hint_of, posterior_prompt, trace_target


def _padded(seqs: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max([len(s) for s in seqs] + [1])
    x = torch.zeros((len(seqs), width), dtype=torch.float64)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.tensor(s, dtype=torch.float64)
    return x, torch.tensor([len(s) for s in seqs])


def weigh_traces(out: Path, c, traces: ArtifactRef, scores: ArtifactRef, answers: ArtifactRef | None = None, *,
                 est: str) -> None:
    """weights.parquet (per trace: shared_len, log_ratio, log_lik, log_rho, rho_tilde) and questions.parquet
    (per question: iwae, elbo, ess). Unfinished traces enter with weight 0 so K stays the number of draws.
    rho_tilde, the bounds and the ESS are over the traces selection may use (``weights.within_cutoff``:
    ``objective.trace_cutoff``); ``log_rho`` is every trace's own (``n_over_cutoff`` counts the difference).

    Policies for bad model outputs, each counted in this step's stats.json:

    * no end-of-thought marker (``finished = False``): weight 0 (``n_unfinished``);
    * a NaN log-prob, or -inf under q, in the shared span: the trace is invalid, weight 0 (``n_invalid_ratio``);
      a NaN answer log-prob (GML) likewise (``n_invalid``); every zero-weight trace: ``n_zero_weight``;
    * an empty trace (the marker straight away): kept and weighed like any other, since answering without
      thinking is a valid proposal whose weight says how good it is (``n_empty_traces``);
    * every trace of a question at weight 0 (e.g. all answers wrong under Acc): rho~ = 0 for the question, no
      NaN (``n_dead_questions``); the training-set build then falls back to its gold trace or drops it.
    """
    if needs_rollouts(est) and answers is None:
        raise ValueError(f"estimator {est!r} needs the answer rollouts")
    with timed(out, estimator=est) as st:
        trs = rows(traces, "traces.parquet")
        sc = {(r["qid"], r["k"]): r for r in rows(scores, "scores.parquet")}
        ans = {(r["qid"], r["k"]): r for r in rows(answers, "answers.parquet")} if answers else {}
        qids = sorted({t["qid"] for t in trs})
        K = max(t["k"] for t in trs) + 1
        keys = [(q, k) for q in qids for k in range(K)]
        live = [kk in sc for kk in keys]
        d, log_lik, shared, st_w = _log_weights(est, keys, sc, ans, live)  # [B*K] each
        lr, st_r = W.log_rho(log_lik.view(len(qids), K), d.view(len(qids), K))  # [B, K]
        usable, st_c = W.within_cutoff(lr, shared.view(len(qids), K), c.objective.trace_cutoff)  # [B, K]
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
        write_rows(out / "weights.parquet", [
            {"qid": q, "k": k, "shared_len": int(shared[b * K + k]), "log_ratio": float(d[b * K + k]),
             "log_lik": float(log_lik[b * K + k]), "log_rho": float(lr[b, k]), "rho_tilde": float(rt[b, k])}
            for b, q in enumerate(qids) for k in range(K)])
        write_rows(out / "questions.parquet", [{"qid": q, "iwae": float(iw[b]), "elbo": float(el[b]),
                                                 "ess": float(ess[b])} for b, q in enumerate(qids)])
        st.update(K=K, n_questions=len(qids), n_unfinished=sum(not x for x in live),
                  n_empty_traces=sum(bool(t["finished"]) and not t["trace"].strip() for t in trs),
                  **st_w, **st_r, **st_c, **st_n, **st_i, **st_l, **st_s)


def _log_weights(est: str, keys: list, sc: dict, ans: dict, live: list[bool]):
    """Per (question, k) in ``keys``: the length-normalised log-ratio d, the estimator's log pi^(Y|x,z) (-inf
    for a trace that was never scored: unfinished) and the shared length, all [B*K], plus their stats."""
    empty = {"think_pi": [], "think_q": [], "answer_pi": []}
    srows = [sc.get(kk, empty) for kk in keys]
    lp_pi, n_pi = _padded([r["think_pi"] for r in srows])
    lp_q, n_q = _padded([r["think_q"] for r in srows])
    d, st_d = W.length_normalised_log_ratio(lp_pi, n_pi, lp_q, n_q)  # [B*K]
    m = max([len(a["correct"]) for a in ans.values()] + [1])
    correct = torch.tensor([ans[kk]["correct"] if kk in ans else [False] * m for kk in keys], dtype=torch.float64)
    a_lp, a_n = _padded([r["answer_pi"] for r in srows])
    log_lik, st_e = ESTIMATORS[est](EstimatorInputs(correct=correct, answer_logps=a_lp, answer_len=a_n))
    log_lik = torch.where(torch.tensor(live), log_lik, torch.full_like(log_lik, float("-inf")))
    return d, log_lik, torch.minimum(n_pi, n_q), {"n_invalid_ratio": st_d["n_invalid"], **st_e}


def build_posterior_set(out: Path, c, responses: ArtifactRef, task: ArtifactRef) -> None:
    """Forward-KL refresh data (method.md §6): traces z_j ~ pi(z|x) with weight pi^(Y|x,z_j) / sum_i pi^(Y|x,z_i),
    where pi^(Y|x,z_j) is the verified correctness of the answer sampled with z_j (a one-rollout estimate),
    as posterior examples (prompt with hint -> trace), plus the seed traces with weight 1."""
    prompt = c.prompt
    with timed(out) as st:
        qs = {q["id"]: q for q in questions(task, "train")}
        qids, by_q = by_question(responses)
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
        out_rows += seed_rows(prompt, task, "posterior")
        write_rows(out / "examples.parquet", out_rows)
        st.update(n_examples=len(out_rows))
