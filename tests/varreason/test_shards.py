"""Sharding by question range (varreason/shards.py): the split covers every question once, and each sharded pass
(sampling traces, scoring, answer rollouts + verification, full responses), merged, equals the unsharded pass."""

import math
from pathlib import Path

import pytest

from step_helpers import step

from varreason.config import load_config
from varreason.io import produce, read_json, write_json, write_rows
from varreason.pipeline.common import rows
from varreason.shards import MERGES, merge_shards, shard_ranges
from varreason.steps import step_key

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
N = 10  # questions; 4 shards of 3, 3, 2, 2 (uneven on purpose)


@pytest.mark.parametrize("n,shards", [(10, 4), (16, 4), (3, 8), (1, 1), (0, 3), (16710, 8)])
def test_ranges_cover_every_question_once_in_order(n, shards):
    ranges = shard_ranges(n, shards)
    assert len(ranges) == max(1, min(n, shards))
    assert [i for a, b in ranges for i in range(a, b)] == list(range(n))
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1 and (n == 0 or min(sizes) >= 1)


def test_ranges_reject_nonsense():
    with pytest.raises(ValueError):
        shard_ranges(5, 0)


def _fake(root, step, table_rows, stats):
    def build(out):
        write_rows(out / MERGES[step].table, table_rows)
        write_json(out / "stats.json", stats)

    return produce(root, step, {"fake": repr(table_rows)}, build)


def test_merge_sums_counts_recomputes_means_and_refuses_mixed_runs(tmp_path):
    a = _fake(tmp_path, "responses", [{"qid": "a", "correct": True}], {"n_responses": 1, "tokens_generated": 5,
                                                                         "accuracy": 1.0, "wall_s": 2.0})
    b = _fake(tmp_path, "responses", [{"qid": "b", "correct": False}, {"qid": "c", "correct": False}],
              {"n_responses": 2, "tokens_generated": 7, "accuracy": 0.0, "wall_s": 3.0})
    m = merge_shards([a, b], str(tmp_path))
    assert Path(m.path).parent.name == "responses"
    assert [r["qid"] for r in rows(m, "responses.parquet")] == ["a", "b", "c"]
    st = read_json(m.verify() / "stats.json")
    assert (st["n_responses"], st["tokens_generated"], st["shards"], st["wall_s"]) == (3, 12, 2, 5.0)
    assert st["accuracy"] == pytest.approx(1 / 3) and st["shard_wall_s_max"] == 3.0
    c = _fake(tmp_path, "scores", [{"qid": "d"}], {"tokens_scored": 1, "temperature": 1.0})
    d = _fake(tmp_path, "scores", [{"qid": "e"}], {"tokens_scored": 1, "temperature": 0.7})
    with pytest.raises(ValueError, match="temperature"):
        merge_shards([c, d], str(tmp_path))
    with pytest.raises(ValueError, match="one mergeable step"):
        merge_shards([a, c], str(tmp_path))


def _same_rows(got: list[dict], want: list[dict]):
    """Equal row for row: strings, ints, bools exactly; floats to 1e-5 (batches padded differently round
    differently; the draws themselves do not move)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for k in w:
            if isinstance(w[k], list) and w[k] and isinstance(w[k][0], float):
                assert len(g[k]) == len(w[k]) and all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(g[k], w[k]))
            else:
                assert g[k] == w[k], k


@pytest.fixture(scope="module")
def setup(tmp_path_factory, one_thread):
    root = str(tmp_path_factory.mktemp("shards"))
    c = load_config(PARAMS, "smoke", {"data.n_train": N, "data.n_seed_traces": 5, "data.n_heldout": 4,
                                      "baselines.rft_samples": 2, "sampling.max_answer_tokens": 8,
                                      "artifacts_dir": root})
    task = step("build-task", c, root)
    model = step("init-backbone", c, root, task=task)
    return c, root, task, model


def _sharded(fn, root, shards=4):
    return merge_shards([fn(shard=r) for r in shard_ranges(N, shards)], root)


def test_sharded_passes_equal_the_unsharded_pass(setup):
    c, root, task, model = setup
    s = c.sampling
    trace = lambda **kw: step("sample-traces", c, root, q=model, task=task, rnd=1, **kw)  # noqa: E731
    full = trace()
    merged = _sharded(trace, root)
    want = rows(full, "traces.parquet")
    assert len(want) == N * s.traces_per_question and merged.path != full.path
    _same_rows(rows(merged, "traces.parquet"), want)
    st_full, st_merged = read_json(full.verify() / "stats.json"), read_json(merged.verify() / "stats.json")
    assert st_merged["tokens_generated"] == st_full["tokens_generated"] and st_merged["shards"] == 4

    # An untrained model rarely closes its thought: mark every trace finished so scoring and answers see them all.
    def finish(out):
        write_rows(out / "traces.parquet", [{**t, "finished": True} for t in want])
        write_json(out / "stats.json", {})

    traces = produce(root, "traces", {"all-finished": full.sha}, finish)
    score = lambda **kw: step("score-traces", c, root, pi=model, q=model, traces=traces, task=task, **kw)  # noqa: E731
    _same_rows(rows(_sharded(score, root), "scores.parquet"), rows(score(), "scores.parquet"))
    answer = lambda **kw: step("rollout-answers", c, root, pi=model, traces=traces, task=task, **kw)  # noqa: E731
    full_answers = rows(answer(), "answers.parquet")
    assert len(full_answers) == len(want)
    _same_rows(rows(_sharded(answer, root), "answers.parquet"), full_answers)
    resp = lambda **kw: step("sample-rft", c, root, pi=model, task=task, rnd=1, **kw)  # noqa: E731
    _same_rows(rows(_sharded(resp, root, shards=3), "responses.parquet"), rows(resp(), "responses.parquet"))


def test_a_shard_is_keyed_apart_and_unsharded_keys_do_not_move(setup):
    c, root, task, model = setup
    a = step("sample-traces", c, root, q=model, task=task, rnd=1, shard=(0, 3))
    b = step("sample-traces", c, root, q=model, task=task, rnd=1, shard=(3, 6))
    full = step("sample-traces", c, root, q=model, task=task, rnd=1)
    assert len({a.path, b.path, full.path}) == 3
    assert {r["qid"] for r in rows(a, "traces.parquet")}.isdisjoint({r["qid"] for r in rows(b, "traces.parquet")})
    # the unsharded key has no shard entry, so a run with sharding.shards = 1 keys its steps as it always did
    assert Path(full.path).name == step_key("sample-traces", c, {"q": model, "task": task}, {"rnd": 1})
