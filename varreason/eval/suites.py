"""Per-document preparation of the hub suites (GPQA-Diamond, OlympiadBench, MMLU-Pro, LiveCodeBench).

These suites are read from the Hugging Face hub (ids in their task YAMLs), so they are not part of any default
run; ``harness.HUB_TASKS`` names them and ``harness.run_lm_eval(local_data=...)`` points them at local files of the
same schema (tests/fixtures/suites/).

* GPQA rows hold ``Question``, ``Correct Answer`` and ``Incorrect Answer 1..3``. ``gpqa_doc`` shuffles the four
  answers with ``random.Random(f"{seed}|{Record ID}")`` (the question text when there is no id), so the letter
  of the right answer is fixed per question and per seed, independent of row order and of the process (a str
  seed is hashed with SHA-512, not ``hash()``). All n samples of a question see the same order. SkyThought
  shuffles with the unseeded global ``random`` instead, so its letters change from run to run.
* OlympiadBench rows hold ``question`` and ``final_answer`` (a list; SkyThought grades against its first entry).
* MMLU-Pro rows hold ``question``, ``options`` (up to 10) and ``answer`` (the letter).
* LiveCodeBench rows hold ``question_content``, ``starter_code``, ``difficulty``, ``public_test_cases`` and
  ``metadata`` (JSON strings); see ``code_grader``.
"""

from __future__ import annotations

import random

GPQA_SHUFFLE_SEED = 0  # part of the task definition: changing it changes the letters, so bump the YAML version


def gpqa_doc(doc: dict, seed: int = GPQA_SHUFFLE_SEED) -> dict:
    """``{"choices": [4 answers, shuffled], "answer": letter of the correct one}``."""
    correct = doc["Correct Answer"]
    choices = [correct] + [doc[f"Incorrect Answer {i}"] for i in (1, 2, 3)]
    choices = [str(c).strip() if c is not None else "" for c in choices]
    key = doc.get("Record ID") or doc["Question"]
    random.Random(f"{seed}|{key}").shuffle(choices)
    return {"choices": choices, "answer": "ABCD"[choices.index(str(correct).strip())]}


def olympiadbench_doc(doc: dict) -> dict:
    """The math tasks' fields: ``problem`` and ``answer`` (the first final answer; "" when there is none, which
    the math grader reports as gold unparseable)."""
    answers = doc.get("final_answer") or []
    return {"problem": doc["question"], "answer": str(answers[0]) if answers else ""}
