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


def test_report_reuses_the_plot_only_for_the_same_results(tmp_path, monkeypatch):
    import varreason.report as report

    calls, draw = [], report.accuracy_plot
    monkeypatch.setattr(report, "accuracy_plot", lambda s: calls.append(1) or draw(s))
    summary = {"results": [{"method": "sft", "round": 0, "accuracy": 0.25}], "weights": [], "train_sets": [],
               "cost": []}
    report.write_report(summary, [1], tmp_path, "# h")
    first = (tmp_path / "accuracy.png").read_bytes()
    report.write_report(summary, [1], tmp_path, "# h")  # a cached re-run: same results, plot reused
    assert calls == [1] and (tmp_path / "accuracy.png").read_bytes() == first
    changed = {**summary, "results": [{"method": "sft", "round": 0, "accuracy": 0.5}]}
    report.write_report(changed, [1], tmp_path, "# h")
    assert calls == [1, 1] and (tmp_path / "accuracy.png").read_bytes() != first
    # a plot of other results (a crash after metrics.json, before the plot) is drawn again
    (tmp_path / "accuracy.png").write_bytes(first)
    report.write_report(changed, [1], tmp_path, "# h")
    assert len(calls) == 3 and (tmp_path / "accuracy.png").read_bytes() != first
    (tmp_path / "accuracy.png").unlink()  # and so is a missing one
    report.write_report(changed, [1], tmp_path, "# h")
    assert len(calls) == 4 and (tmp_path / "accuracy.png").exists()


def test_a_train_set_reports_only_what_its_builder_records(tmp_path):
    """GRPO's set builder records no selection counts and no exact-trace share: the summary leaves them out and
    the table prints "-" (it once printed 0 questions and 0.000 exact for every GRPO round)."""
    from varreason.report import train_set_table

    stages = [_stage(tmp_path, "build-reasoner-set", "em-gml", 1, {"n_selected": 9, "n_fallback": 1, "n_dropped": 0,
                                                                  "frac_exact_traces": 0.25}),
              _stage(tmp_path, "build-grpo-set", "grpo", 1, {"n_kept": 12})]
    stages = [Stage(s.method, s.round, "train-set", s.ref) for s in stages]
    sets = collect(stages)["train_sets"]
    assert {"method": "grpo", "round": 1} in sets
    table = train_set_table({"train_sets": sets})
    assert "| em-gml | 1 | 9 | 1 | 0 | 0.250 |" in table and "| grpo | 1 | - | - | - | - |" in table
