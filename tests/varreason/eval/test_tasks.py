"""The lm-eval task YAMLs: resolution (every value from params.yaml), the paper's n per benchmark, versions, and
evaluation prompts built from the profile's ``prompt.reasoner``."""

import re
from pathlib import Path

import pytest
import yaml

from varreason.config import load_config
from varreason.eval.harness import (ALL_TASKS, DATA_DIR, KNOWN_TASKS, TASKS_DIR, resolve_tasks, run_lm_eval,
                                    write_arith_jsonl)
from varreason.eval.questions import BOXED_INSTRUCTION, math_question

from .fakes import PROMPT, SAMPLING, STOP, RecordingSampler

ROOT = Path(__file__).resolve().parents[3]
PAPER_N = {"vr_math500": 2, "vr_aime24": 32, "vr_aime25": 32, "vr_amc23": 32}


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)


def test_question_text_is_the_benchmark_instruction_and_the_problem():
    assert BOXED_INSTRUCTION == r"Return your final response within \boxed{}."
    assert math_question("What is $1+1$?") == r"Return your final response within \boxed{}. What is $1+1$?"


def test_resolved_tasks(tmp_path):
    jsonl = write_arith_jsonl([{"id": "h1", "question": "1+2", "answer": 3, "split": "heldout"},
                               {"id": "t1", "question": "2+2", "answer": 4, "split": "train"}], tmp_path / "a.jsonl")
    assert jsonl.read_text().count("\n") == 1  # training questions are left out
    ev = load_config(profile="qwen3").eval
    repeats = {t: ev.n_for(t) for t in ALL_TASKS} | {"vr_arith": 3}
    out = resolve_tasks(tmp_path / "tasks", repeats, {"temperature": 0.6, "top_p": 0.9}, "<END>", jsonl)
    assert (out / "utils.py").exists()
    base = load(out / "_vr_math_base.yaml")
    assert base["generation_kwargs"] == {"until": ["<END>"], "do_sample": True, "temperature": 0.6, "top_p": 0.9}
    for name in ALL_TASKS:
        cfg = load(out / f"{name}.yaml")
        assert cfg["task"] == name and cfg["metadata"]["version"] == 2
        assert cfg["repeats"] == cfg["filter_list"][0]["filter"][0]["k"] == repeats[name]
        files = cfg["dataset_kwargs"]["data_files"]["test"]
        assert Path(files).is_file(), files
        if name in PAPER_N:
            assert cfg["repeats"] == PAPER_N[name]  # the paper's n, from the qwen3 profile
            assert Path(files).parent == DATA_DIR
    assert load(out / "vr_arith.yaml")["generation_kwargs"]["temperature"] == 0.6
    assert not re.search(r"@[A-Z_]+@", "".join(p.read_text() for p in out.glob("*.yaml")))


def test_only_the_named_tasks_are_resolved(tmp_path):
    out = resolve_tasks(tmp_path, {"vr_math500": 2}, SAMPLING, STOP)
    assert sorted(p.name for p in out.glob("*.yaml")) == ["_vr_lcb_base.yaml", "_vr_math_base.yaml", "vr_math500.yaml"]
    with pytest.raises(ValueError):
        resolve_tasks(tmp_path / "x", {"vr_math500": 0}, SAMPLING, STOP)
    with pytest.raises(ValueError):  # vr_arith needs the held-out questions
        resolve_tasks(tmp_path / "y", {"vr_arith": 2}, SAMPLING, STOP)
    with pytest.raises(ValueError):  # sampling values come from params, all of them
        resolve_tasks(tmp_path / "z", {"vr_math500": 2}, {"temperature": 0.7}, STOP)


def test_package_yamls_hold_placeholders_only():
    """No n, temperature, top_p or stop string in the YAMLs: params.yaml is their only source."""
    for p in TASKS_DIR.glob("*.yaml"):
        text = p.read_text()
        assert "/work/" not in text and "shared" not in text, p
        cfg = load(p)
        if "repeats" in cfg:
            assert cfg["repeats"] == "@REPEATS@", p
        gen = cfg.get("generation_kwargs", {})
        assert all(gen.get(k, f"@{k.upper()}@") == f"@{k.upper()}@" for k in ("temperature", "top_p")), p
        assert gen.get("until", ["@END_OF_SOLUTION@"]) == ["@END_OF_SOLUTION@"], p


def test_task_manager_indexes_resolved_tasks(tmp_path):
    from lm_eval.tasks import TaskManager

    jsonl = write_arith_jsonl([{"id": "h1", "question": "1+2", "answer": "3"}], tmp_path / "a.jsonl")
    tm = TaskManager(include_path=str(resolve_tasks(tmp_path / "tasks", {t: 2 for t in ALL_TASKS}, SAMPLING, STOP,
                                                    jsonl)))
    assert set(ALL_TASKS) <= set(tm.all_tasks)


def test_every_known_task_resolves(tmp_path):
    jsonl = write_arith_jsonl([{"id": "h1", "question": "1+2", "answer": "3"}], tmp_path / "a.jsonl")
    out = resolve_tasks(tmp_path / "tasks", {t: 1 for t in KNOWN_TASKS}, SAMPLING, STOP, jsonl)
    assert {p.stem for p in out.glob("vr_*.yaml")} == set(KNOWN_TASKS)


def test_evaluation_prompts_come_from_the_profile(tmp_path):
    """The sampler receives ``prompt.reasoner`` with the benchmark question in ``{question}``: whatever template
    the profile holds, never one of the harness's own."""
    from varreason.config import PromptConfig

    custom = PromptConfig(reasoner="[INST] {question} [/INST] <think>", posterior="{question} {hint}")
    jsonl = write_arith_jsonl([{"id": "h1", "question": "1+2", "answer": "3"}], tmp_path / "a.jsonl")
    for prompt in (custom, PROMPT):
        s = RecordingSampler()
        run_lm_eval("rec", None, prompt, ["vr_arith", "vr_math500"], tmp_path / prompt.reasoner[:3], limit=1,
                    repeats={"vr_arith": 2, "vr_math500": 1}, sampling=SAMPLING, sampler=s, n_boot=10,
                    arith_questions=[{"id": "h1", "question": "1+2", "answer": "3"}])
        prompts = [p for call in s.calls for p in call[0]]
        params = [call[1] for call in s.calls]
        assert prompt.reasoner.replace("{question}", "1+2") in prompts
        problem = load_first_problem()
        assert prompt.reasoner.replace("{question}", math_question(problem)) in prompts
        assert all((p.n, p.temperature, p.top_p, p.stop) in {(2, 0.7, 1.0, (STOP,)), (1, 0.7, 1.0, (STOP,))}
                   for p in params)
    assert jsonl.exists()


def load_first_problem() -> str:
    import json

    return json.loads((DATA_DIR / "math500.jsonl").read_text().splitlines()[0])["problem"]
