"""Unit tests for varreason/sweep.py: grid validation, expansion, the summary of hand-built run summaries."""

from pathlib import Path

import pytest
import yaml

from varreason.config import ConfigError, load_config
from varreason.sweep import expand, load_grid, sweep_report

ROOT = Path(__file__).resolve().parents[2]


def _grid(tmp_path, **changes):
    doc = {"profile": "smoke", "out_dir": "x",
           "arms": {"main": {"seeds": [0, 1, 2]}, "k8": {"seeds": [0, 1], "overrides": {"baselines.rft_samples": 8}}},
           "analysis": {"metrics": ["avg@n"], "contrasts": [["em-gml", "rft"], ["em-gml", "sft"]],
                        "ablations": [{"name": "K", "method": "em-gml", "round": 1, "baseline": "main",
                                       "arms": ["k8"]}], "n_boot": 200}}
    doc.update(changes)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_shipped_grid_is_valid_and_every_run_resolves():
    grid = load_grid(ROOT / "science" / "grid.yaml")
    runs = expand(grid, "results/sci")
    assert len(runs) == 10 + 6 * 3
    assert grid.arms["main"].seeds == list(range(10))
    for r in runs:  # every arm's overrides give a valid profile
        load_config(ROOT / "params.yaml", grid.profile, r["overrides"])


def test_expand_subsets_and_adds_seed_and_results_dir(tmp_path):
    grid = load_grid(_grid(tmp_path))
    runs = expand(grid, "res", arms=["k8"], seeds=[1])
    assert runs == [{"arm": "k8", "seed": 1, "overrides": {"baselines.rft_samples": 8, "seed": 1,
                                                           "results_dir": "res/sweep/k8/seed-1"}}]
    with pytest.raises(ConfigError, match="unknown arms"):
        expand(grid, "res", arms=["nope"])


@pytest.mark.parametrize("change,match", [
    ({"arms": {"main": {"seeds": []}}}, "seeds"),
    ({"arms": {"main": {"seeds": [0], "overrides": {"seed": 3}}, "k8": {"seeds": [0]}}}, "sweep sets itself"),
    ({"arms": {"main": {"seeds": [0]}}}, "does not define"),  # the ablation names k8
    ({"typo": 1}, "typo"),
])
def test_bad_grids_fail_with_one_line(tmp_path, change, match):
    with pytest.raises(ConfigError, match=match):
        load_grid(_grid(tmp_path, **change))


def _summary(em, rft, sft, exact):
    return {"results": [{"method": "sft", "round": 0, "accuracy": sft}, {"method": "rft", "round": 1, "accuracy": rft},
                        {"method": "em-gml", "round": 1, "accuracy": em}],
            "train_sets": [{"method": "em-gml", "round": 1, "frac_exact_traces": exact},
                           {"method": "rft", "round": 1, "frac_exact_traces": 0.9}]}


def test_sweep_report_hand(tmp_path):
    grid = load_grid(_grid(tmp_path))
    summaries = {"main": {0: _summary(0.30, 0.20, 0.10, 0.5), 1: _summary(0.40, 0.30, 0.20, 0.4),
                          2: _summary(0.35, 0.30, 0.15, 0.3)},
                 "k8": {0: _summary(0.40, 0.25, 0.10, 0.2), 1: _summary(0.50, 0.30, 0.20, 0.2)}}
    rep = sweep_report(grid, summaries)
    main = rep["json"]["arms"]["main"]
    rows = {(r["a"][0], r["b"][0]): r for r in main["contrasts"]}
    # em-gml - rft per seed: 0.10, 0.10, 0.05 -> mean 0.08333; em-gml - sft: 0.20 each -> sd 0, p 0
    assert rows[("em-gml", "rft")]["t"]["estimate"] == pytest.approx(0.0833333)
    assert rows[("em-gml", "sft")]["p_t"] == 0.0
    assert "p_holm" in rows[("em-gml", "rft")] and "bootstrap_questions" not in rows[("em-gml", "rft")]
    exact = [m for m in main["means"] if m["metric"] == "exact" and m["method"] == "em-gml"][0]
    assert exact["t"]["estimate"] == pytest.approx(0.4)
    assert not any(m["metric"] == "exact" and m["method"] == "sft" for m in main["means"])  # not recorded: absent
    ab = {r["metric"]: r for r in rep["json"]["ablations"][0]["rows"]}
    # k8 - main on the common seeds 0, 1: em-gml r1 +0.10, +0.10; exact -0.3, -0.2
    assert ab["avg@n"]["diffs"] == pytest.approx({0: 0.10, 1: 0.10})
    assert ab["exact"]["t"]["estimate"] == pytest.approx(-0.25)
    md = rep["markdown"]
    assert "## Arm `main`" in md and "## Ablation K" in md and "| em-gml r1 - rft r1 | avg@n | +0.083 |" in md
    assert rep["bias_bins"] is None and rep["json"]["per_seed"]["k8"][1][2]["accuracy"] == 0.5


def test_means_plot_writes_png(tmp_path):
    from varreason import stats
    from varreason.sweep import means_plot

    runs = {s: stats.RunOutcome({("sft", 0): {"avg@n": 0.1 + s / 10}, ("rft", 1): {"avg@n": 0.2 + s / 10}}, {})
            for s in range(3)}
    out = means_plot(stats.cell_means(runs, "avg@n"), "avg@n", tmp_path / "a.png", "t")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_environment_names_the_machine_and_the_thread_count():
    import torch

    from varreason.sweep import environment

    env = environment()
    assert env["torch_threads"] == torch.get_num_threads() and env["packages"]["torch"] == torch.__version__
    assert env["cpus"] >= 1 and env["torch_cpu_capability"]


def test_seed_parts_keep_a_seeds_runs_together_and_balance_cost():
    from varreason.sweep import seed_parts

    runs = [{"seed": s} for s in range(10)] + [{"seed": s} for s in (0, 1, 2) for _ in range(6)]
    # costs: seeds 0-2: 2.5 + 6 = 8.5 each, seeds 3-9: 2.5 each (42.5 in all). LPT: 0 -> A, 1 -> B, 2 -> A (17),
    # then 3, 4, 5, 6 -> B (18.5), 7 -> A (19.5), 8 -> B (21), 9 -> A (22)
    assert seed_parts(runs, 2) == [[0, 2, 7, 9], [1, 3, 4, 5, 6, 8]]
    assert seed_parts(runs, 1) == [list(range(10))]
    assert seed_parts([{"seed": 4}], 3) == [[4]]  # no empty parts
