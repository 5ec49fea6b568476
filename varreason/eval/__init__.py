"""Benchmark evaluation through lm-eval with the paper's protocol (method.md §13).

``run.run_lm_eval`` is the entry point; ``grader`` holds the one answer extractor and the verifiers
(``code_grader`` the LiveCodeBench one), ``suites`` the per-document preparation of the hub suites (``run.HUB_TASKS``),
``lm.VarReasonLM`` the lm-eval model over the project's samplers, ``metrics`` avg@n / pass@k / bootstrap CI,
``tasks/`` the lm-eval YAMLs and ``data/`` the shipped benchmark files (see data/SOURCES.md).
"""
