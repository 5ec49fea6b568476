"""The lm-eval task YAMLs: resolution, the paper's n per benchmark, versions, prompts equal to params.yaml."""

from pathlib import Path

import pytest
import yaml

from varreason.eval.prompts import BOXED_INSTRUCTION, SKY_T1_REASONER, TINY_REASONER, arith_prompt, math_prompt
from varreason.eval.run import ALL_TASKS, DATA_DIR, TASKS_DIR, resolve_tasks, write_arith_jsonl

ROOT = Path(__file__).resolve().parents[3]
PAPER_N = {"vr_math500": 2, "vr_aime24": 32, "vr_aime25": 32, "vr_amc23": 32}


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)


def test_prompts_equal_params_yaml():
    profiles = yaml.safe_load((ROOT / "params.yaml").read_text())["profiles"]
    assert SKY_T1_REASONER == profiles["qwen3"]["prompt"]["reasoner"]
    assert TINY_REASONER == profiles["tiny"]["prompt"]["reasoner"]
    p = math_prompt("What is $1+1$?")
    assert p.startswith("<|im_start|>system\nYour role as an assistant")
    assert f"<|im_start|>user\n{BOXED_INSTRUCTION} What is $1+1$?<|im_end|>" in p
    assert p.endswith("<|im_start|>assistant\n<|begin_of_thought|>\n\n")
    assert BOXED_INSTRUCTION == r"Return your final response within \boxed{}."
    assert arith_prompt("1+2") == "<|im_start|>1+2<|im_end|><|begin_of_thought|>"


def test_resolved_tasks(tmp_path):
    jsonl = write_arith_jsonl([{"id": "h1", "question": "1+2", "answer": 3, "split": "heldout"},
                               {"id": "t1", "question": "2+2", "answer": 4, "split": "train"}], tmp_path / "a.jsonl")
    assert jsonl.read_text().count("\n") == 1  # training questions are left out
    out = resolve_tasks(tmp_path / "tasks", jsonl, repeats={"vr_arith": 3})
    assert (out / "utils.py").exists()
    base = load(out / "_vr_math_base.yaml")
    assert base["generation_kwargs"] == {"until": ["<|end_of_solution|>"], "do_sample": True, "temperature": 0.7,
                                         "top_p": 1.0}
    for name in ALL_TASKS:
        cfg = load(out / f"{name}.yaml")
        assert cfg["task"] == name and cfg["metadata"]["version"] >= 1
        assert cfg["repeats"] == cfg["filter_list"][0]["filter"][0]["k"]
        files = cfg["dataset_kwargs"]["data_files"]["test"]
        assert Path(files).is_file(), files
        if name in PAPER_N:
            assert cfg["repeats"] == PAPER_N[name]
            assert Path(files).parent == DATA_DIR
    assert load(out / "vr_arith.yaml")["repeats"] == 3


def test_without_arith_questions_vr_arith_is_left_out(tmp_path):
    out = resolve_tasks(tmp_path)
    assert not (out / "vr_arith.yaml").exists() and (out / "vr_math500.yaml").exists()
    with pytest.raises(ValueError):
        resolve_tasks(tmp_path / "x", repeats={"vr_math500": 0})


def test_package_yamls_hold_placeholders_only():
    for p in TASKS_DIR.glob("*.yaml"):
        text = p.read_text()
        assert "/work/" not in text and "shared" not in text, p


def test_task_manager_indexes_resolved_tasks(tmp_path):
    from lm_eval.tasks import TaskManager

    jsonl = write_arith_jsonl([{"id": "h1", "question": "1+2", "answer": "3"}], tmp_path / "a.jsonl")
    tm = TaskManager(include_path=str(resolve_tasks(tmp_path / "tasks", jsonl)))
    assert set(ALL_TASKS) <= set(tm.all_tasks)
