"""The GRPO baseline's steps (varreason/pipeline/grpo.py, pipeline/train.py:train_grpo) on hand-made samples:
advantages per group, old log-probs aligned with what the trainer encodes, flat groups left out, seed rows as
plain SFT, and a few training steps of the clipped objective through the one training loop."""

import math
from pathlib import Path

import pytest
from step_helpers import setup_models, step

from varreason.config import load_config
from varreason.io import produce, read_json, read_rows, write_json, write_rows

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


@pytest.fixture(scope="module")
def grpo_set(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("grpo")
    c = load_config(PARAMS, "smoke", {"artifacts_dir": str(root), "data.n_train": 6, "data.n_seed_traces": 2,
                                      "data.n_heldout": 2, "baselines.rft_samples": 2, "train.steps": 3})
    m = setup_models(c, root)
    qs = [q for q in read_rows(m["task"].verify() / "questions.parquet") if q["split"] == "train"]
    eot, bos, eos = c.prompt.end_of_thought, c.prompt.begin_of_solution, c.prompt.end_of_solution
    rows = []
    for i, q in enumerate(qs):  # q0, q1: one right, one wrong; q2: both right (flat); the rest: both wrong (flat)
        for j in range(2):
            right = (i < 2 and j == 0) or i == 2
            ans = q["answer"] if right else str(int(q["answer"]) + 1)
            text = f"{q['question']}{eot}\n\n{bos}\\boxed{{{ans}}}{eos}"
            rows.append({"qid": q["id"], "level": q["level"], "j": j, "text": text, "trace": q["question"],
                         "solution": f"\\boxed{{{ans}}}", "parsed": True, "correct": right})

    def build(out):
        write_rows(out / "responses.parquet", rows)
        write_json(out / "stats.json", {})

    responses = produce(root, "responses", {"hand-made": 1}, build)
    ref = step("build-grpo-set", c, root, responses=responses, pi=m["backbone"], task=m["task"])
    return c, root, m, rows, ref


def test_advantages_old_logps_and_seed_rows(grpo_set):
    c, root, m, rows, ref = grpo_set
    ex = read_rows(ref.verify() / "examples.parquet")
    sampled = [e for e in ex if not all(math.isnan(x) for x in e["old_logp"])]
    assert [(e["qid"], e["advantage"]) for e in sampled] == [(rows[0]["qid"], 1.0), (rows[1]["qid"], -1.0),
                                                             (rows[2]["qid"], 1.0), (rows[3]["qid"], -1.0)]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(m["backbone"].verify())
    for e in sampled:  # one log-prob per response token plus the eos the trainer appends; all finite, <= 0
        assert len(e["old_logp"]) == len(tok.encode(e["response"], add_special_tokens=False)) + 1
        assert all(math.isfinite(x) and x <= 0 for x in e["old_logp"])
    seeds = [e for e in ex if e not in sampled]
    assert len(seeds) == 2 and all(e["advantage"] == 1.0 for e in seeds)
    st = read_json(ref.verify() / "stats.json")
    assert (st["n_flat_groups"], st["n_kept"], st["n_positive"]) == (4, 4, 2)


def test_train_grpo_runs_the_clipped_objective(grpo_set):
    c, root, m, rows, ref = grpo_set
    ckpt = step("train-grpo", c, root, init=m["backbone"], set=ref, rnd=1)
    st = read_json(ckpt.verify() / "stats.json")
    assert st["steps"] == 3 and math.isfinite(st["final_loss"])
    from safetensors.torch import load_file

    a, b = load_file(ckpt.verify() / "model.safetensors"), load_file(m["backbone"].verify() / "model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) > 0  # it trained
