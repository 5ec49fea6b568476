"""The choices inside an EM round, each made once, here (issue: one place per round decision). The recipe
(``varreason.recipe``) and the builders call these; nothing else re-derives them. Which estimators need answer
rollouts is the estimator registry's (``varreason.estimators.needs_rollouts``); how many optimizer steps each
training gets is its step's row (``varreason.steps``)."""

from __future__ import annotations


def scorer(cfg, current, initial):
    """Which reasoner scores a round's weights and rolls out its Acc answers: pi_theta0 (``em.weights_model:
    initial``, the reference's single offline round) or the latest reasoner (``current``)."""
    return initial if cfg.em.weights_model == "initial" else current


def round_start(cfg, current, initial):
    """Which reasoner a round's training starts from (``em.reasoner_init``): pi_theta0 or the previous one."""
    return initial if cfg.em.reasoner_init == "initial" else current


def score_temperature(cfg) -> float:
    """The density traces are scored under: untempered (1.0, the reference's) or the sampled, tempered one
    (``objective.proposal_density``)."""
    return cfg.sampling.temperature if cfg.objective.proposal_density == "tempered" else 1.0
