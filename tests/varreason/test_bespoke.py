"""The Bespoke-Stratos-17k loader (varreason/bespoke.py) and the `bespoke` build-task step, on a local fixture
with HF_DATASETS_OFFLINE=1."""

import json
from pathlib import Path

import pytest

from varreason import bespoke
from varreason.config import DataError, load_config
from step_helpers import step

from varreason.pipeline.common import questions
from varreason.pipeline.sample import grade
from varreason.prompts import posterior_prompt

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "bespoke" / "train.jsonl"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def cfg(tmp_path, dataset=FIXTURE, **over):
    o = {"data.dataset": str(dataset), "data.n_train": 5, "data.n_heldout": 2, "data.n_seed_traces": 3,
         "artifacts_dir": str(tmp_path / "artifacts"), **over}
    return load_config(ROOT / "params.yaml", "qwen3", o)


def test_split_ids_and_fields():
    rows = bespoke.load_rows(str(FIXTURE))
    assert len(rows) == 8
    qs = bespoke.questions(rows, n_train=5, n_heldout=2, n_seed_traces=3, seed=0)
    train = [q for q in qs if q["split"] == "train"]
    held = [q for q in qs if q["split"] == "heldout"]
    assert len(train) == 5 and len(held) == 2
    assert not {q["id"] for q in train} & {q["id"] for q in held}
    assert sum(q["gold_trace"] is not None for q in train) == 3 and all(q["gold_trace"] is None for q in held)
    by_id = {q["id"]: q for q in qs}
    for q in qs:
        src = rows[int(q["id"].split("-")[1])]  # ids carry the source row index
        assert q["question"] == src["question_content"]
        assert q["solution"] == q["hint"] == src["solution_content"]
        if q["gold_trace"] is not None:
            assert q["gold_trace"] == src["think_content"]
    # answers are the last \boxed{} of the solution; the code problem (row 4) has none
    expected = {0: "14", 1: "\\frac{3}{4}", 2: "6", 3: "3", 4: "", 5: "2", 6: "7", 7: "25"}
    for q in qs:
        assert q["answer"] == expected[int(q["id"].split("-")[1])]
    assert len(by_id) == 7
    # deterministic in the seed, different across seeds
    assert bespoke.questions(rows, 5, 2, 3, seed=0) == qs
    assert [q["id"] for q in bespoke.questions(rows, 5, 2, 3, seed=1)] != [q["id"] for q in qs]


def test_parquet_and_directory_read_the_same(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = bespoke.load_rows(str(FIXTURE))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "part-0.parquet")
    assert bespoke.load_rows(str(tmp_path / "part-0.parquet")) == rows
    assert bespoke.load_rows(str(tmp_path)) == rows


def test_bad_schema_and_sizes_say_how_to_fix(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "1+1", "think_content": "", "solution_content": "2"}) + "\n")
    with pytest.raises(ValueError, match="question_content"):
        bespoke.load_rows(str(bad))
    with pytest.raises(DataError, match="does not exist"):
        bespoke.load_rows(str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="lower one of them"):
        bespoke.questions(bespoke.load_rows(str(FIXTURE)), 7, 2, 1, 0)


def test_hub_id_goes_through_datasets_offline():
    # a hub id is handed to `datasets`, which (offline, nothing cached) refuses instead of reaching the network
    with pytest.raises(ConnectionError, match="OfflineModeIsEnabled"):
        bespoke.load_rows("zhouxiangxin/Bespoke-Stratos-17k-Reformatted")


def test_build_task_step_and_hint_and_grader(tmp_path):
    c = cfg(tmp_path)
    ref = step("build-task", c, c.artifacts_dir)
    qs = questions(ref)
    assert len(qs) == 7 and {q["grader"] for q in qs} == {"math"}
    q = next(q for q in qs if q["answer"] == "14")
    # the posterior prompt carries the whole reference solution as hint
    p = posterior_prompt(c.prompt, q["question"], q["hint"])
    assert p.endswith("<|begin_of_thought|>\n\n") and "Hint (reference solution): " + q["solution"] in p
    # one grader for the task: math-verify on the solution block
    assert grade(q, "so the answer is $\\boxed{14}$")
    assert grade(q, "\\boxed{14.0}")
    assert not grade(q, "\\boxed{15}") and not grade(q, None)
    code = next(q for q in qs if q["answer"] == "")
    assert not grade(code, "\\boxed{}")  # no verifier for code problems here: never scores
    # seed sets: reasoner gets trace + the reference solution, posterior gets the hinted prompt
    seed_pi = step("build-seed-set", c, c.artifacts_dir, task=ref, role="reasoner")
    seed_q = step("build-seed-set", c, c.artifacts_dir, task=ref, role="posterior")
    from varreason.io import read_rows

    rp, rq = read_rows(seed_pi.verify() / "examples.parquet"), read_rows(seed_q.verify() / "examples.parquet")
    n_seed = sum(q["gold_trace"] is not None for q in qs)
    assert len(rp) == len(rq) == n_seed == 3
    by_id = {q["id"]: q for q in qs}
    for a, b in zip(rp, rq):
        src = by_id[a["qid"]]
        assert a["response"] == (src["gold_trace"] + "<|end_of_thought|>\n\n<|begin_of_solution|>" + src["solution"]
                                 + "<|end_of_solution|>")
        assert b["response"] == src["gold_trace"] + "<|end_of_thought|>"
        assert src["solution"] in b["prompt"] and src["solution"] not in a["prompt"]
