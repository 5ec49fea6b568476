"""science.calibrate runs exactly the steps the SFT-only evaluation needs, with the flow's keys."""

from pathlib import Path

import pytest

from science.calibrate import sft_metrics
from varreason.config import load_config
from varreason.recipe import graph

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sft_metrics_builds_only_the_evaluations_ancestors(tmp_path, one_thread):
    c = load_config(ROOT / "params.yaml", "smoke", {"artifacts_dir": str(tmp_path / "a")})
    m = sft_metrics(c)
    assert 0.0 <= m["accuracy"] <= 1.0 and m["n_questions"] == c.data.n_heldout
    built = {p.parent.parent.name for p in (tmp_path / "a").glob("*/*/.complete")}
    # task, backbone, the reasoner's seed set, pi_theta0 and its evaluation: not q_phi0 nor its seed set
    assert built == {"task", "backbone", "seed-set", "checkpoint", "eval"}
    assert len(list((tmp_path / "a").glob("checkpoint/*/.complete"))) == 1
    assert len(list((tmp_path / "a").glob("seed-set/*/.complete"))) == 1
    assert {n.step for n in graph(c) if n.method == "sft"} >= {"train-pi0", "train-q0", "evaluate"}
    assert sft_metrics(c) == m  # all cache hits: the same artifact
