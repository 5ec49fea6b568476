"""Cost accounting of a run: per stage and per (method, round), tokens by kind and tokens/s."""

from varreason.io import produce, write_json
from varreason.report import Stage, collect, cost_table


def _stage(tmp_path, name, method, rnd, stats):
    ref = produce(tmp_path, name, {"m": method, "r": rnd}, lambda out: write_json(out / "stats.json", stats))
    return Stage(method, rnd, name, ref)


def test_cost_rows_and_table_hand_computed(tmp_path):
    stages = [_stage(tmp_path, "sample-traces", "em-gml", 1, {"wall_s": 2.0, "tokens_generated": 100}),
              _stage(tmp_path, "score", "em-gml", 1, {"wall_s": 1.0, "tokens_scored": 300}),
              _stage(tmp_path, "train", "em-gml", 2, {"wall_s": 4.0, "tokens_trained": 200}),
              _stage(tmp_path, "sample-traces", "em-gml", 2, {"wall_s": 2.0, "tokens_generated": 60})]
    cost = collect(stages)["cost"]
    assert cost[1] == {"method": "em-gml", "round": 1, "stage": "score", "wall_s": 1.0, "tokens": 300,
                       "tokens_generated": 0, "tokens_scored": 300, "tokens_trained": 0, "tokens_per_s": 300.0}
    table = cost_table({"cost": cost})
    # per stage, longest wall first: sample-traces 4 s, 160 generated -> 40 tokens/s
    assert "| sample-traces | 4.0 | 160 | 0 | 0 | 40 |" in table
    assert "| train | 4.0 | 0 | 0 | 200 | 50 |" in table
    # per round: round 1 = 3 s, 100 generated + 300 scored -> 133 tokens/s; round 2 = 6 s, 260 -> 43
    assert "| em-gml | 1 | 3.0 | 100 | 300 | 0 | 133 |" in table
    assert "| em-gml | 2 | 6.0 | 60 | 0 | 200 | 43 |" in table
