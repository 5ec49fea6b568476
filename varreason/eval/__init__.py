"""Benchmark evaluation through lm-eval with the paper's protocol (method.md §13).

``harness.run_lm_eval`` is the entry point; ``grader`` holds the one answer extractor and the grader of each
dataset (``code_grader`` the LiveCodeBench one), ``audit`` and ``perturb`` the false-positive audit of the
graders (docs/evaluation.md), ``questions`` what each benchmark puts into the profile's reasoner template,
``suites`` the per-document preparation of the hub suites (``harness.HUB_TASKS``), ``lm.VarReasonLM`` the
lm-eval model over the project's samplers, ``metrics`` avg@n / pass@k / bootstrap CI, ``tasks/`` the lm-eval
YAMLs and ``data/`` the shipped benchmark files (see data/SOURCES.md).
"""
