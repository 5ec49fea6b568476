"""The recipe of a ``vr-em`` run: which steps run, in which order, on which inputs. Written once, here.

``compose(cfg, run)`` calls ``run(step, method, round, label=..., **inputs_and_ctx)`` for every step of the run
in order, passing each step the values earlier calls returned. Who ``run`` is decides what happens:

* the Prefect flow (``flows/vr_em.py``) runs each call as a cached task and gets ``ArtifactRef``s back;
* ``graph(cfg)`` records each call as a ``Node`` (its task-run name and the names of its inputs), which the DVC
  stages (``varreason.pipeline.dvc``), the planner (``varreason.plan``) and ``--status``
  (``varreason.status``) read.

So the flow's task runs and the DVC stages are the same list by construction (``tests/test_recipe.py`` checks it
against a real flow run). A round (method.md §9, per estimator e and round r): sample K traces from q -> score
them under pi and q (+ M answer rollouts for Acc) -> importance weights -> reasoner training set -> train pi_r ->
refresh q with the forward-KL objective -> evaluate pi_r. Baselines in the same harness and budget: SFT-only
(pi_theta0, evaluated once), RFT (sample from pi, keep verified-correct, SFT) and GRPO (the same samples, group
advantages, clipped policy gradient; ``baselines.grpo``), with the same samples per question and optimizer steps. The choices inside a round are the functions of ``varreason.rounds`` (``scorer``,
``round_start``) and ``varreason.estimators.needs_rollouts``; this module only calls them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from varreason.config import ExperimentConfig
from varreason.estimators import needs_rollouts
from varreason.rounds import round_start, scorer
from varreason.steps import STEPS

Run = Callable[..., Any]  # run(step, method, round, /, *, label="", **inputs_and_ctx) -> the step's output
Chains = Callable[[list[Callable[[], None]]], None]  # runs independent chains, in order or at once


def in_order(chains: list[Callable[[], None]]) -> None:
    for chain in chains:
        chain()


def compose(c: ExperimentConfig, run: Run, chains: Chains = in_order) -> None:
    """Every step of the run for profile ``c``: set-up, SFT-only, then each estimator's EM chain and the RFT chain,
    which depend on the set-up only; ``chains`` runs those (the flow runs them at once when
    ``em.concurrent_chains``)."""
    task = run("build-task", "data", 0)
    backbone = run("init-backbone", "data", 0, task=task)
    seed_pi = run("build-seed-set", "data", 0, label="reasoner", task=task, role="reasoner")
    seed_q = run("build-seed-set", "data", 0, label="posterior", task=task, role="posterior")
    pi0 = run("train-pi0", "sft", 0, init=backbone, set=seed_pi)
    q0 = run("train-q0", "sft", 0, init=backbone, set=seed_q)
    run("evaluate", "sft", 0, model=pi0, task=task)
    todo = [lambda est=est: em_chain(c, run, est, pi0, q0, task) for est in c.objective.estimators]
    if c.baselines.rft:
        todo.append(lambda: rft_chain(c, run, pi0, task))
    if c.baselines.grpo:
        todo.append(lambda: grpo_chain(c, run, pi0, task))
    chains(todo)


def em_chain(c: ExperimentConfig, run: Run, est: str, pi0: Any, q0: Any, task: Any) -> None:
    """``em.rounds`` rounds of variational EM with estimator ``est``, starting from pi_theta0 and q_phi0."""
    m, pi, q = f"em-{est}", pi0, q0
    for r in range(1, c.em.rounds + 1):
        traces = run("sample-traces", m, r, q=q, task=task, rnd=r)
        judge = scorer(c, pi, pi0)
        scores = run("score-traces", m, r, pi=judge, q=q, traces=traces, task=task)
        answers = run("rollout-answers", m, r, pi=judge, traces=traces, task=task) if needs_rollouts(est) else None
        weights = run("weigh-traces", m, r, traces=traces, scores=scores, answers=answers, est=est)
        examples = run("build-reasoner-set", m, r, weights=weights, traces=traces, answers=answers, task=task,
                       est=est)
        pi = run("train-reasoner", m, r, init=round_start(c, pi, pi0), set=examples, rnd=r)
        if c.em.refresh_posterior:
            responses = run("sample-refresh", m, r, pi=pi, task=task, rnd=r)
            post = run("build-posterior-set", m, r, responses=responses, task=task)
            q = run("train-posterior", m, r, init=q, set=post, rnd=r)
        run("evaluate", m, r, model=pi, task=task)


def rft_chain(c: ExperimentConfig, run: Run, pi0: Any, task: Any) -> None:
    """RFT: sample from pi, keep the verified-correct responses, SFT; ``em.rounds`` rounds, EM's step budget."""
    pi = pi0
    for r in range(1, c.em.rounds + 1):
        responses = run("sample-rft", "rft", r, pi=pi, task=task, rnd=r)
        examples = run("build-rft-set", "rft", r, responses=responses, task=task)
        pi = run("train-reasoner", "rft", r, init=round_start(c, pi, pi0), set=examples, rnd=r)
        run("evaluate", "rft", r, model=pi, task=task)


def grpo_chain(c: ExperimentConfig, run: Run, pi0: Any, task: Any) -> None:
    """GRPO (binary reward = the task's grader): per round, RFT's sampling step on this chain's policy (round 1
    shares RFT's samples: one key), group advantages, the clipped surrogate for ``train.steps`` steps. It always
    continues from the policy that drew the round's samples (the ratio is against it), whatever
    ``em.reasoner_init`` says."""
    pi = pi0
    for r in range(1, c.em.rounds + 1):
        responses = run("sample-rft", "grpo", r, pi=pi, task=task, rnd=r)
        examples = run("build-grpo-set", "grpo", r, responses=responses, pi=pi, task=task)
        pi = run("train-grpo", "grpo", r, init=pi, set=examples, rnd=r)
        run("evaluate", "grpo", r, model=pi, task=task)


def split_args(step: str, kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``run`` call's keyword arguments as (inputs by role, run-position ctx), by the step's table row."""
    roles = STEPS[step].roles()
    return {r: kw.get(r) for r in roles}, {k: v for k, v in kw.items() if k not in roles}


@dataclass(frozen=True)
class Node:
    """One step of a run: its task-run name (unique in a run), step, report cell, inputs and ctx."""

    run: str
    step: str
    method: str
    round: int
    inputs: dict[str, str | None] = field(default_factory=dict)  # role -> upstream node's run name
    ctx: dict[str, Any] = field(default_factory=dict)


def graph(c: ExperimentConfig) -> list[Node]:
    """The run's steps in execution order, without running any (``compose`` with a recording ``run``)."""
    nodes: list[Node] = []

    def record(step: str, method: str, round_: int, /, *, label: str = "", **kw: Any) -> str:
        refs, ctx = split_args(step, kw)
        name = STEPS[step].run_name(method, round_, label)
        if any(n.run == name for n in nodes):
            raise ValueError(f"two steps of the recipe are both named {name!r}")
        nodes.append(Node(name, step, method, round_, refs, ctx))
        return name

    compose(c, record)
    return nodes
