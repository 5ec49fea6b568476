"""A code edit recomputes only the steps whose code changed, and ``--status`` says so beforehand (issue 19).

On a copy of the repository, the smoke profile (one EM round) runs cold through ``python -m flows.vr_em``; then
each edit below is applied, ``--status`` is asked, the flow re-runs, and the edit is reverted. ``--status`` states
are "cached" (certain), "will run" (the step's own key changed: certain) and "may run" (downstream of a rebuilt
step: runs unless the rebuilt input comes out byte-identical). Checked for every edit: each "will run" step ran,
each step that ran was predicted "will run" or "may run", no step predicted "cached" ran; plus what each edit must
and must not recompute.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--profile", "smoke", "--set", "em.rounds=1"]
ALWAYS = ("preflight", "status", "publish-results", "dvc-version")  # run in every flow run by design
_TASK = re.compile(r"Task run '([^']+)' - Finished in state (\w+)\(")
_ROW = re.compile(r"^\| (\S+) \| (cached|will run|may run) \|", re.M)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    dest = tmp_path_factory.mktemp("edits")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file() and not f.startswith(("tests/", "docs/", "benchmarks/")):
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    _cli(dest)  # cold run: everything computed once
    return dest


def _cli(repo: Path, *extra: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(repo), "PREFECT_HOME": str(repo / ".prefect"), "OMP_NUM_THREADS": "1",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180", "HF_HUB_OFFLINE": "1"}
    env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    res = subprocess.run([sys.executable, "-m", "flows.vr_em", *ARGS, *extra], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def _edit_run(repo: Path, edits: dict[str, callable]) -> tuple[dict[str, str], set[str]]:
    """Apply ``edits`` (path -> text transform), ask --status, re-run, revert; return (predictions, ran)."""
    saved = {p: (repo / p).read_text() for p in edits}
    try:
        for p, fn in edits.items():
            new = fn(saved[p])
            assert new != saved[p], f"edit of {p} changed nothing"
            (repo / p).write_text(new)
        predicted = dict(_ROW.findall(_cli(repo, "--status")))
        states = dict(_TASK.findall(_cli(repo)))
    finally:
        for p, text in saved.items():
            (repo / p).write_text(text)
    ran = {t for t, s in states.items() if s != "Cached" and not t.startswith(ALWAYS)}
    assert set(predicted) == {t for t in states if not t.startswith(ALWAYS)}  # status lists the run's steps
    will = {t for t, s in predicted.items() if s == "will run"}
    may = {t for t, s in predicted.items() if s == "may run"}
    assert will <= ran, f"predicted to run but cached: {will - ran}"
    assert ran <= will | may, f"ran although predicted cached: {ran - will - may}"
    return predicted, ran


def _every_module(repo: Path) -> dict:
    return {str(p.relative_to(repo)): (lambda t: t + "\n# a comment appended by the test\n")
            for p in (repo / "varreason").rglob("*.py")}


@pytest.mark.slow
def test_comment_and_docstring_edits_recompute_nothing(repo):
    edits = _every_module(repo)
    edits["varreason/weights.py"] = lambda t: t.replace('"""Per-trace mean log-ratio over the shared prefix.',
                                                        '"""Per-trace mean of the log-ratio over the shared prefix.')
    predicted, ran = _edit_run(repo, edits)
    assert ran == set() and set(predicted.values()) == {"cached"}


@pytest.mark.slow
def test_report_body_edit_reruns_only_the_publication(repo):
    predicted, ran = _edit_run(repo, {"varreason/report.py": lambda t: t.replace(
        "| held-out acc (avg@n) |", "| held-out accuracy (avg@n) |")})
    assert ran == set() and set(predicted.values()) == {"cached"}


@pytest.mark.slow
def test_weight_function_edit_keeps_sampling_and_scoring(repo):
    predicted, ran = _edit_run(repo, {"varreason/weights.py": lambda t: t.replace(
        "    d = diff.sum(-1) / T.clamp(min=1)\n", "    d = 2 * diff.sum(-1) / T.clamp(min=1)\n")})
    upstream = {t for t in predicted if t.startswith(("sample-traces", "score-traces", "rollout-answers",
                                                      "sample-responses-rft", "build-task", "train-pi0"))}
    assert upstream and not upstream & ran
    assert {t for t, s in predicted.items() if s == "will run"} == {"weigh-traces-em-acc-r1", "weigh-traces-em-gml-r1"}
    # weights.py also holds the refresh's forward-KL weights: that step's own key changed too (it is downstream)
    assert {"build-posterior-set-em-acc-r1", "build-posterior-set-em-gml-r1"} <= ran
    assert {"weigh-traces-em-gml-r1", "build-reasoner-set-em-gml-r1"} <= ran  # GML weights moved: new selection


@pytest.mark.slow
def test_hf_sampler_edit_reruns_every_sampling_step(repo):
    predicted, ran = _edit_run(repo, {"varreason/backends/hf.py": lambda t: t.replace(
        "    return (seed * 1_000_003 + j) % (1 << 62)", "    return (seed * 1_000_003 + j + 1) % (1 << 62)")})
    sampling = {t for t in predicted if t.startswith(("sample-", "rollout-answers", "evaluate"))}
    # the Acc and GML chains share round 1's traces (one key): computed once, by the first
    assert predicted["sample-traces-em-gml-r1"] == "cached"
    sampling.discard("sample-traces-em-gml-r1")
    assert sampling <= ran  # every other sampling step ran: those whose inputs were cached were "will run"
    assert {t for t, s in predicted.items() if s == "will run"} == {
        "sample-traces-em-acc-r1", "sample-responses-rft-r1", "evaluate-sft-r0"}
    assert not {t for t in ran if t.startswith(("build-task", "init-backbone", "build-seed-set", "train-pi0",
                                                "train-q0"))}


@pytest.mark.slow
def test_lm_eval_yaml_edit_reruns_only_the_evaluations(repo):
    predicted, ran = _edit_run(repo, {"varreason/eval/tasks/vr_arith.yaml": lambda t: t + "# edited by the test\n"})
    evals = {t for t in predicted if t.startswith("evaluate-")}
    assert ran == evals and {t for t, s in predicted.items() if s != "cached"} == evals
