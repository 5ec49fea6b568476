"""The hub suites (GPQA-Diamond, OlympiadBench, MMLU-Pro, LiveCodeBench) offline: their YAMLs name the hub
datasets and the paper's n, ``local_data`` swaps in the fixtures of tests/fixtures/suites (same columns), lm-eval's
TaskManager loads them into docs and prompts, and one run_lm_eval over all four scores every sample as hand-computed."""

import json
from pathlib import Path

import pytest

from varreason.config import ModelConfig, load_config
from varreason.eval.harness import ALL_TASKS, HUB_TASKS, MATH_TASKS, point_at_local, resolve_tasks, run_lm_eval
from varreason.eval.suites import gpqa_doc

from .fakes import PROMPT, SAMPLING, STOP, ScriptedSampler
from .test_tasks import load

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "suites"
LOCAL = {"vr_gpqa_diamond": FIX / "gpqa_diamond.jsonl", "vr_olympiadbench": FIX / "olympiadbench.jsonl",
         "vr_mmlu_pro": FIX / "mmlu_pro.jsonl",
         **{f"vr_lcb_{d}": FIX / "livecodebench.jsonl" for d in ("easy", "medium", "hard")}}
HUB = {"vr_gpqa_diamond": ("Idavidrein/gpqa", "gpqa_diamond", "train", 8),
       "vr_olympiadbench": ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train", 2),
       "vr_mmlu_pro": ("TIGER-Lab/MMLU-Pro", "default", "test", 1)}


def rows(name):
    return [json.loads(line) for line in (FIX / name).read_text().splitlines()]


def test_hub_suites_are_selectable_but_not_default(tmp_path):
    assert not set(HUB_TASKS) & (set(ALL_TASKS) | set(MATH_TASKS))
    with pytest.raises(ValueError):
        resolve_tasks(tmp_path / "a", {}, SAMPLING, STOP, local_data={"vr_nope": LOCAL["vr_mmlu_pro"]})
    with pytest.raises(FileNotFoundError):
        resolve_tasks(tmp_path / "b", {"vr_mmlu_pro": 1}, SAMPLING, STOP,
                      local_data={"vr_mmlu_pro": tmp_path / "missing.jsonl"})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_yamls_name_the_hub_datasets_and_the_paper_n(tmp_path):
    ev = load_config(profile="qwen3").eval  # the paper's n per suite lives in params.yaml, not in the YAMLs
    out = resolve_tasks(tmp_path, {t: ev.n_for(t) for t in HUB_TASKS}, SAMPLING, STOP)
    for name, (path, config, split, n) in HUB.items():
        cfg = load(out / f"{name}.yaml")
        assert (cfg["dataset_path"], cfg["dataset_name"], cfg["test_split"], cfg["repeats"]) == (path, config, split, n)
        assert cfg["filter_list"][0]["filter"][0]["k"] == n and cfg["metadata"]["version"] == 2
    base = load(out / "_vr_lcb_base.yaml")
    assert base["dataset_kwargs"]["data_files"]["test"] == [
        "hf://datasets/livecodebench/code_generation_lite/test.jsonl",
        "hf://datasets/livecodebench/code_generation_lite/test2.jsonl"]  # release_v2
    for d in ("easy", "medium", "hard"):
        cfg = load(out / f"vr_lcb_{d}.yaml")
        assert cfg["repeats"] == 8 and cfg["process_docs"] == f"!function utils.process_docs_lcb_{d}"


def test_point_at_local_replaces_every_dataset_key(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text("{}\n")
    text = ("task: t\ndataset_path: a/b\ndataset_name: c\ndataset_kwargs:\n  data_files:\n    test: y\n"
            "test_split: train\nrepeats: 2\n")
    cfg = load_text(point_at_local(text, f))
    assert cfg == {"task": "t", "repeats": 2, "dataset_path": "json", "dataset_name": None,
                   "dataset_kwargs": {"data_files": {"test": f.resolve().as_posix()}}, "test_split": "test"}


def load_text(text):
    import yaml

    from .test_tasks import _Loader
    return yaml.load(text, Loader=_Loader)


def test_gpqa_shuffle_is_seeded_per_question():
    docs = rows("gpqa_diamond.jsonl")
    for d in docs:
        g = gpqa_doc(d)
        assert sorted(g["choices"]) == sorted([d["Correct Answer"]] + [d[f"Incorrect Answer {i}"] for i in (1, 2, 3)])
        assert g["choices"]["ABCD".index(g["answer"])] == d["Correct Answer"]
        assert gpqa_doc(dict(d)) == g  # same question, same letters
    # the seed matters: over a few seeds the right answer's letter moves
    assert len({gpqa_doc(docs[0], seed=s)["answer"] for s in range(8)}) > 1


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from lm_eval.tasks import TaskManager

    tm = TaskManager(include_path=str(resolve_tasks(tmp_path_factory.mktemp("tasks"), {t: 1 for t in HUB_TASKS},
                                                    SAMPLING, STOP, local_data=LOCAL)),
                     include_defaults=False)  # lm-eval's own ~10k task YAMLs are not needed here
    return tm.load(list(HUB_TASKS))["tasks"]


def test_suites_load_from_fixtures_through_the_task_manager(loaded):
    docs = {name: list(loaded[name].eval_docs) for name in HUB_TASKS}
    assert {k: len(v) for k, v in docs.items()} == {"vr_gpqa_diamond": 3, "vr_olympiadbench": 3, "vr_mmlu_pro": 3,
                                                   "vr_lcb_easy": 2, "vr_lcb_medium": 1, "vr_lcb_hard": 1}
    gpqa = loaded["vr_gpqa_diamond"]
    d = docs["vr_gpqa_diamond"][1]
    assert gpqa.doc_to_target(d) == gpqa_doc(d)["answer"]
    p = gpqa.doc_to_text(d)
    assert "only include the letter choice (A, B, C, or D)" in p
    assert "What is the oxidation state of oxygen in H2O2?\nA) " in p and ", D) " in p
    oly = loaded["vr_olympiadbench"]
    d = docs["vr_olympiadbench"][1]
    assert oly.doc_to_target(d) == "$-\\frac{1}{2}$"
    assert "Return your final response within \\boxed{}. Find the real $x$" in oly.doc_to_text(d)
    mmlu = loaded["vr_mmlu_pro"]
    d = docs["vr_mmlu_pro"][1]
    assert mmlu.doc_to_target(d) == "C"
    assert mmlu.doc_to_text(d).endswith("Answer Choices: (A) Oxygen (B) Argon (C) Nitrogen (D) Carbon dioxide")
    easy = docs["vr_lcb_easy"]
    assert [d["question_id"] for d in easy] == ["fix_a", "fix_b"]
    assert [d["question_id"] for d in docs["vr_lcb_hard"]] == ["fix_d"]
    stdin_p, func_p = (loaded["vr_lcb_easy"].doc_to_text(d) for d in easy)
    assert "take stdin as input and print the output" in stdin_p and "```python" not in stdin_p
    assert "Return the function body" in func_p and "def doubleAll(self, nums: List[int])" in func_p


CFG = ModelConfig(kind="tiny", hidden_size=32, intermediate_size=64, num_layers=1, num_heads=1, num_kv_heads=1,
                  head_dim=32, max_length=64)


def boxed(x):
    return f"steps<|end_of_thought|>\n\n<|begin_of_solution|>so \\boxed{{{x}}}"


def code(src):
    return f"steps<|end_of_thought|>\n\n<|begin_of_solution|>```python\n{src}\n```"


def test_run_lm_eval_on_the_fixtures(tmp_path):
    gpqa = {d["Question"]: gpqa_doc(d)["answer"] for d in rows("gpqa_diamond.jsonl")}
    wrong = {a: "ABCD"[("ABCD".index(a) + 1) % 4] for a in "ABCD"}
    script = {q: [boxed(a), boxed(wrong[a])] for q, a in gpqa.items()}  # 1 right, 1 wrong of n=2
    script.update({d["question"]: [boxed(d["final_answer"][0].strip("$")), "no box"]
                   for d in rows("olympiadbench.jsonl")})  # 1 right, 1 unparseable of n=2
    mm = {d["question"]: d for d in rows("mmlu_pro.jsonl")}
    script["What is 7 times 8?"] = [boxed("B")]  # right
    script[mm["Which gas makes up most of Earth's atmosphere?"]["question"]] = [boxed("A")]  # wrong
    script["Which data structure serves items first-in, first-out?"] = [boxed("J")]  # J: no such option (6)
    script["print A+B."] = [code("a, b = map(int, input().split())\nprint(a + b)"), code("print(3")]
    script["every element doubled."] = [
        code("class Solution:\n    def doubleAll(self, nums):\n        return [2 * x for x in nums]"),
        code("class Solution:\n    def doubleAll(self, nums):\n        return nums")]
    res = run_lm_eval("scripted", CFG, PROMPT, ["vr_gpqa_diamond", "vr_olympiadbench", "vr_mmlu_pro", "vr_lcb_easy"],
                      tmp_path, seed=0, repeats={"vr_gpqa_diamond": 2, "vr_olympiadbench": 2, "vr_mmlu_pro": 1,
                                                 "vr_lcb_easy": 2}, sampling=SAMPLING, pass_k=[1],
                      sampler=ScriptedSampler(script), n_boot=50, local_data=LOCAL)
    t = res["tasks"]
    want = {"vr_gpqa_diamond": (3, 2, 0.5, 3, 0, 0), "vr_olympiadbench": (3, 2, 0.5, 0, 3, 0),
            "vr_mmlu_pro": (3, 1, 1 / 3, 1, 1, 0), "vr_lcb_easy": (2, 2, 0.5, 1, 1, 0)}
    for name, (q, n, acc, n_wrong, n_unp, n_gold) in want.items():
        got = t[name]
        assert (got["n_questions"], got["n_samples"]) == (q, n), name
        assert got["avg@n"] == pytest.approx(acc) and got["lm_eval_avg_at_n"] == pytest.approx(acc), name
        assert (got["n_wrong"], got["n_pred_unparseable"], got["n_gold_unparseable"]) == (n_wrong, n_unp, n_gold), name
        assert got["version"] == 2
    assert t["vr_lcb_easy"]["n_timeout"] == 0 and "n_timeout" not in t["vr_mmlu_pro"]
