"""--status (varreason/status.py): the first differing part of a key, in words; cached / will run / may run."""

from pathlib import Path

from step_helpers import step

from varreason.config import load_config
from varreason.status import _diff, format_status, status

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def test_diff_names_the_first_changed_part():
    old = {"params": {"sampling.temperature": 0.7}, "inputs": {"q": "a"}, "ctx": {"rnd": 1},
           "code": {"varreason/weights.py": "1"}, "data": {}, "packages": {"torch": "2.13.0"}, "version": 1}
    assert _diff(old, {**old, "params": {"sampling.temperature": 0.8}}) == "param sampling.temperature: 0.7 -> 0.8"
    assert _diff(old, {**old, "inputs": {"q": "b"}}) == "input q changed (new content)"
    assert _diff(old, {**old, "code": {"varreason/weights.py": "2"}}) == "code file varreason/weights.py changed"
    assert _diff(old, {**old, "code": {**old["code"], "varreason/new.py": "3"}}) == \
        "code file varreason/new.py added"
    assert _diff(old, {**old, "packages": {"torch": "2.14.0"}}) == "package torch: '2.13.0' -> '2.14.0'"
    assert _diff(old, {**old, "version": 2}) == "version: 1 -> 2"
    assert _diff(old, dict(old)) == "same key, artifact missing (deleted?)"


def test_status_of_a_partly_built_store(tmp_path, one_thread):
    c = load_config(PARAMS, "smoke", {"artifacts_dir": str(tmp_path), "em.rounds": 1})
    rows = {r.run: r for r in status(c)}
    assert rows["build-task"].state == "will run" and rows["build-task"].reason == "never built"
    assert rows["init-backbone"].state == "may run" and "build-task" in rows["init-backbone"].reason
    task = step("build-task", c, tmp_path, label="build-task")
    step("init-backbone", c, tmp_path, label="init-backbone", task=task)
    rows = {r.run: r for r in status(c)}
    assert rows["build-task"].state == rows["init-backbone"].state == "cached"
    assert rows["build-seed-set-reasoner"].state == "will run"
    other = load_config(PARAMS, "smoke", {"artifacts_dir": str(tmp_path), "em.rounds": 1, "model.hidden_size": 48})
    rows = {r.run: r for r in status(other)}
    assert rows["build-task"].state == "cached"
    assert rows["init-backbone"].reason == "param model.hidden_size: 32 -> 48"  # the leaf, not the section
    text = format_status(other, list(rows.values()))
    assert "1 of " in text and "| init-backbone | will run |" in text


def test_an_empty_store_names_the_steps_an_earlier_step_of_the_run_builds(tmp_path):
    """Keys downstream of unbuilt steps are unknown, but equal steps on equal upstream steps share one: the
    estimators' round-1 traces (sampled from q_phi0) and their scores under pi_theta0 are built once."""
    c = load_config(PARAMS, "smoke", {"artifacts_dir": str(tmp_path)})
    shared = {r.run: r.reason for r in status(c) if r.state == "cached"}
    assert shared == {"sample-traces-em-gml-r1": "built by sample-traces-em-acc-r1 in this run",
                      "score-traces-em-gml-r1": "built by score-traces-em-acc-r1 in this run"}
