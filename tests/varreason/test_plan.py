"""The planning dry-run (varreason/plan.py, `python -m flows.vr_em --plan`): pure, hand-checked token counts."""

from pathlib import Path

from varreason.config import load_config
from varreason.plan import COLUMNS, format_plan, plan_round

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def by_task(rows):
    return {r.task: r for r in rows}


def test_qwen3_round_resolves_every_task_with_resources_and_tokens():
    c = load_config(PARAMS, "qwen3")
    rows = plan_round(c)
    t = by_task(rows)
    assert len(t) == len(rows)  # task run names are unique
    # one round of each estimator and of RFT, the set-up before and publish after
    for e in ("acc", "gml"):
        for name in ("sample-traces", "score-traces", "weigh-traces", "build-reasoner-set", "train-pi", "evaluate"):
            assert f"{name}-em-{e}-r1" in t
    assert "rollout-answers-em-acc-r1" in t and "rollout-answers-em-gml-r1" not in t
    assert "sample-responses-em-acc-r1" not in t  # qwen3: refresh_posterior false (the reference trains q once)
    assert rows[0].task == "preflight-qwen3" and rows[-1].task == "publish-results"
    # hand-computed upper bounds: 16710 questions x K=8 x 32764 max new tokens; x M=8 more for the answers
    assert t["sample-traces-em-acc-r1"].est_tokens == 16710 * 8 * 32764
    assert t["rollout-answers-em-acc-r1"].est_tokens == 16710 * 8 * 8 * 32764
    assert t["score-traces-em-gml-r1"].est_tokens == 2 * 16710 * 8 * 32768
    assert t["train-pi-em-acc-r1"].est_tokens == 1044 * 96 * 32768
    # MATH500 x 2 + AIME24, AIME25 x 32 + AMC23 x 32 responses of at most 38912 tokens
    assert t["evaluate-sft-r0"].est_tokens == (500 * 2 + 30 * 32 + 30 * 32 + 40 * 32) * 38912
    assert "hub suites vr_gpqa_diamond" in t["evaluate-sft-r0"].tokens_note  # named, not counted (sizes unknown)
    # resources: vLLM with tensor parallel 4, training on 8 processes through accelerate + FSDP
    assert (t["sample-traces-em-acc-r1"].gpus, t["sample-traces-em-acc-r1"].launcher) == (4, "vllm tp=4")
    assert t["train-pi0"].gpus == 8 and t["train-pi0"].launcher.startswith("accelerate x8")
    assert t["weigh-traces-em-acc-r1"].gpus == 0
    # wiring: weights read the traces, scores and (Acc) answers of the same round; pi0 is the scorer (qwen3)
    assert t["weigh-traces-em-acc-r1"].inputs == ("sample-traces-em-acc-r1", "score-traces-em-acc-r1",
                                                 "rollout-answers-em-acc-r1")
    assert t["score-traces-em-acc-r1"].inputs[0] == "train-pi0"
    assert t["train-pi-em-gml-r1"].artifact.startswith("artifacts/checkpoint/")
    # qwen3: sharding.shards 8; the passes over the train split are sharded, nothing else is
    sharded = {r.task for r in rows if r.shards > 1}
    assert sharded == {"sample-traces-em-acc-r1", "score-traces-em-acc-r1", "rollout-answers-em-acc-r1",
                       "sample-traces-em-gml-r1", "score-traces-em-gml-r1", "sample-responses-rft-r1"}
    assert all(r.shards == 8 for r in rows if r.task in sharded) and t["train-pi0"].shards == 1
    assert "shard" in t["sample-traces-em-acc-r1"].artifact and "merged into" in t["sample-traces-em-acc-r1"].artifact
    assert "shards" in COLUMNS


def test_tiny_plan_is_cpu_only_and_matches_flow_names():
    c = load_config(PARAMS, "tiny")
    rows = plan_round(c)
    t = by_task(rows)
    assert all(r.gpus == 0 for r in rows) and t["train-pi0"].launcher == "in-process"
    # refresh on (tiny): the posterior is re-trained each round from samples of the new pi
    assert t["train-q-em-gml-r1"].inputs == ("train-q0", "build-posterior-set-em-gml-r1")
    assert t["sample-traces-em-acc-r1"].est_tokens == 1500 * 4 * 48
    assert t["rollout-answers-em-acc-r1"].est_tokens == 1500 * 4 * 4 * 16
    assert t["train-pi-rft-r1"].est_tokens == 250 * 64 * 96
    # round 2 reads round 1's models (reasoner_init previous, weights_model current)
    t2 = by_task(plan_round(c, round_=2))
    assert t2["sample-traces-em-acc-r2"].inputs[0] == "train-q-em-acc-r1"
    assert t2["score-traces-em-acc-r2"].inputs[0] == "train-pi-em-acc-r1"
    assert all(r.shards == 1 for r in rows)  # tiny: sharding.shards 1, so its results stay as they were
    text = format_plan(c, rows)
    plan_table = text.split("\n\n")[1]
    assert plan_table.startswith("| task |") and plan_table.count("\n| ") == len(rows)  # one line per task
    assert "sharding: none" in text


def test_shard_plan_follows_params():
    c = load_config(PARAMS, "tiny", {"sharding.shards": 3, "data.n_train": 10, "data.n_seed_traces": 5})
    t = by_task(plan_round(c))
    assert t["sample-traces-em-gml-r1"].shards == 3 and t["evaluate-sft-r0"].shards == 1
    text = format_plan(c, list(t.values()))
    assert "| s0 | [0, 4) | 4 |" in text and "| s2 | [7, 10) | 3 |" in text and "one shard at a time" in text


def test_cli_plan_prints_without_running(capsys):
    from flows.cli import main

    assert main(["--profile", "qwen3", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "| sample-traces-em-acc-r1 | train-q0, build-task | 4 | vllm tp=4 | 8 | 4.4G" in out
    # the shard plan: 16710 questions in 8 ranges (2089 x 6, 2088 x 2), on Ray
    assert "| s0 | [0, 2089) | 2089 |" in out and "| s7 | [14622, 16710) | 2088 |" in out
    assert "runner: Ray via prefect-ray" in out
    assert "results/qwen3/" in out


def test_chains_and_critical_path():
    from varreason.plan import chains, format_chains

    c = load_config(PARAMS, "qwen3", {"em.concurrent_chains": True})
    rows = {r["chain"]: r for r in chains(c)}
    assert list(rows) == ["set-up", "em-acc", "em-gml", "rft"]
    # em-acc's chain of one round: traces 16710 x 8 x 32764, scores 2 x 16710 x 8 x 32768, answers x M=8, the
    # reasoner's training 1044 x 96 x 32768 and the benchmarks' generation (weights/set build: no tokens)
    n, k, m = 16710, 8, 8
    want = n * k * 32764 + 2 * n * k * 32768 + n * k * m * 32764 + 1044 * 96 * 32768 + \
        (500 * 2 + 30 * 32 + 30 * 32 + 40 * 32) * 38912
    assert rows["em-acc"]["tokens"] == want and rows["em-acc"]["gpu_h"] == 0.0
    text = "\n".join(format_chains(c))
    assert "critical path, chains at once (em.concurrent_chains): set-up -> em-acc" in text
    assert "rates unknown" in text
    rates = {"generate_tokens_per_s": 1000.0, "score_tokens_per_s": 2000.0, "train_tokens_per_s": 500.0}
    r = {x["chain"]: x for x in chains(c, rates)}["rft"]
    # rft: sampling (generate), its set (no tokens), training, evaluation (generate); GPU-h = tokens / rate
    gen = n * 8 * (32764 + 32764) + (500 * 2 + 30 * 32 + 30 * 32 + 40 * 32) * 38912
    assert abs(r["gpu_h"] - (gen / 1000 + 1044 * 96 * 32768 / 500) / 3600) < 1e-6
