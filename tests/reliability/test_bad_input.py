"""Bad input gets a clear error, not a traceback (issue 8, item 2).

A corpus of malformed inputs in three groups:

(a) config / CLI: the real ``python -m flows.vr_em`` in a subprocess. Each case must exit 2 with one
    ``error:`` line on stderr that names the field and the fix, and no ``Traceback``. The CLI validates before
    it imports Prefect, so each case costs ~0.3 s. Issue 23 added the inputs that still printed tracebacks
    (an ``artifacts_dir`` that is a file, a ``--set`` value that is not YAML, ``--params`` naming a directory)
    and a sweep: paths that are files, directories or unwritable, bad YAML wherever a value is read, empty and
    huge files, Prefect's state directories and API URL from the environment.
(b) dataset rows: ``varreason.bespoke`` on local files written to tmp, plus the over-long-example policy of
    the trainer. A malformed row raises ``DataError`` naming file, line and field; the rest are counted policies.
(c) model outputs into the weights / selection code and the weigh / training-set steps: no end-of-thought, an
    empty trace, NaN / -inf log-probs, a question whose every trace has weight 0. Each follows the policy
    documented in ``varreason.weights`` / ``selection`` / ``pipeline.weigh`` and shows up in a counter.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from varreason import arith, bespoke
from varreason import weights as W
from varreason.config import ConfigError, DataError, UserError, load_config
from varreason.estimators import EstimatorInputs, acc_log_likelihood, gml_log_likelihood
from varreason.io import produce, write_json, write_rows
from varreason.prompts import parse_response
from varreason.selection import ScoredTrace, select_top1, select_weighted
from varreason.training import Example, encode_examples, train_sft

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"
NAN, NINF = float("nan"), float("-inf")
GOOD = {"question_content": "What is $1+1$?", "think_content": "1+1 is 2.", "solution_content": r"$\boxed{2}$"}


# ----------------------------------------------------------------------------------------------- (a) CLI
def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           **(env or {})}
    return subprocess.run([sys.executable, "-m", "flows.vr_em", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def _file(tmp: Path, name: str, data: bytes | str = b"x\n") -> str:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(p)


def _dir(tmp: Path, name: str) -> str:
    (tmp / name).mkdir(parents=True, exist_ok=True)
    return str(tmp / name)


# /sys refuses new files even to root (permission bits would not stop root, as CI runs); a plain user is
# refused too. The probe creates nothing there.
UNWRITABLE = "/sys/varreason-test/out"
LAUNCHER = "train.launcher={kind: accelerate, num_processes: 2, config: %s}"


def _params(tmp: Path, edit) -> str:
    """A copy of params.yaml with ``edit(text) -> text`` applied (the edit must change something)."""
    text = PARAMS.read_text()
    new = edit(text)
    assert new != text, "the edit did not apply"
    p = tmp / "params.yaml"
    p.write_text(new) if isinstance(new, str) else p.write_bytes(new)
    return str(p)


def _jsonl(tmp: Path, rows: list, name: str = "train.jsonl") -> str:
    p = tmp / name
    p.write_bytes(b"".join(r if isinstance(r, bytes) else (json.dumps(r) + "\n").encode() for r in rows))
    return str(p)


BESPOKE = ("--set", "data.task=bespoke", "--set", "data.n_train=2", "--set", "data.n_heldout=0",
           "--set", "data.n_seed_traces=1")

# (id, argv builder taking tmp_path, what the error line must contain)
CLI_CASES = [
    ("K-zero", lambda t: ["--set", "sampling.traces_per_question=0"],
     ["sampling.traces_per_question: must be greater than or equal to 1 (got 0)"]),
    ("M-negative", lambda t: ["--set", "sampling.answer_rollouts=-3"],
     ["sampling.answer_rollouts", "greater than or equal to 1"]),
    ("rounds-zero", lambda t: ["--set", "em.rounds=0"], ["em.rounds", "greater than or equal to 1"]),
    ("rounds-not-int", lambda t: ["--set", "em.rounds=two"], ["em.rounds: must be a valid integer", "(got 'two')"]),
    ("temperature-type", lambda t: ["--set", "sampling.temperature=hot"], ["sampling.temperature", "valid number"]),
    ("temperature-negative", lambda t: ["--set", "sampling.temperature=-1"],
     ["sampling.temperature", "greater than 0"]),
    ("max-length-too-small", lambda t: ["--set", "model.max_length=8"], ["model.max_length", "greater than or equal"]),
    ("unknown-key", lambda t: ["--set", "train.lrr=0.1"], ["train.lrr", "unknown key; remove it"]),
    ("unknown-section", lambda t: ["--set", "nosuch.key=1"], ["'nosuch' is not a section"]),
    ("set-without-value", lambda t: ["--set", "em.rounds"], ["--set 'em.rounds'", "expected key=value"]),
    ("bad-literal", lambda t: ["--set", "objective.selection=best"], ["objective.selection", "allowed:", "'top1'"]),
    ("bad-estimator", lambda t: ["--set", "objective.estimators=[elbo]"], ["objective.estimators", "allowed:"]),
    ("seed-gt-train", lambda t: ["--set", "data.n_seed_traces=5000"],
     ["data: n_seed_traces (5000) must be <= n_train (1500)", "lower data.n_seed_traces"]),
    ("pass-k-gt-n", lambda t: ["--set", "eval.pass_k=[64]"],
     ["eval: pass_k values must be <= n_samples (4)", "lower eval.pass_k"]),
    ("tempered-needs-top-p-1",
     lambda t: ["--set", "objective.proposal_density=tempered", "--set", "sampling.top_p=0.9"],
     ["profile 'tiny': objective.proposal_density 'tempered'", "set top_p to 1.0"]),
    ("too-few-distinct-questions", lambda t: ["--set", "data.max_operand=2", "--set", "data.levels=[1]"],
     ["give only 8 distinct questions", "raise data.max_operand"]),
    ("unknown-profile", lambda t: ["--profile", "nope"], ["unknown profile 'nope'", "pick one"]),
    ("missing-params-file", lambda t: ["--params", str(t / "missing.yaml")], ["missing.yaml: not found", "--params"]),
    ("params-not-yaml", lambda t: ["--params", _params(t, lambda s: s + "\n  broken: [1, 2\n")],
     ["not valid YAML at line", "fix the syntax"]),
    ("params-not-utf8", lambda t: ["--params", _params(t, lambda s: s.encode() + b"\n# caf\xe9\n")],
     ["not UTF-8", "re-save it as UTF-8"]),
    ("params-not-a-mapping", lambda t: ["--params", _params(t, lambda s: "- a\n- b\n")],
     ["expected a mapping with 'default_profile' and 'profiles'"]),
    ("params-type-error-in-file", lambda t: ["--params", _params(t, lambda s: s.replace(
        "traces_per_question: 4", "traces_per_question: four", 1))], ["sampling.traces_per_question", "'four'"]),
    ("params-unknown-key-in-file", lambda t: ["--params", _params(t, lambda s: s.replace(
        "      backend: hf\n", "      backend: hf\n      colour: blue\n", 1))], ["sampling.colour: unknown key"]),
    ("params-missing-key-in-file", lambda t: ["--params", _params(t, lambda s: s.replace(
        "      rounds: 2\n", "", 1))], ["em.rounds: missing", "add it to the profile"]),
    ("profile-extends-cycle", lambda t: ["--profile", "loop", "--params", _params(t, lambda s: s.replace(
        "profiles:\n", "profiles:\n  loop: {extends: pool}\n  pool: {extends: loop}\n", 1))],
     ["extends itself", "break the cycle"]),
    ("missing-dataset-path", lambda t: [*BESPOKE, "--set", f"data.dataset={t / 'nope' / 'train.jsonl'}"],
     ["data.dataset", "does not exist", "fix the path"]),
    ("dataset-non-utf8",
     lambda t: [*BESPOKE, "--set", "data.dataset=" + _jsonl(t, [GOOD, b'{"question_content": "caf\xe9"}\n'])],
     ["train.jsonl:2: not UTF-8", "re-encode"]),
    ("dataset-missing-answer", lambda t: [*BESPOKE, "--set", "data.dataset=" + _jsonl(
        t, [{k: v for k, v in GOOD.items() if k != "solution_content"}])],
     ["train.jsonl:1: field 'solution_content' is missing"]),
    ("dataset-duplicate-id", lambda t: [*BESPOKE, "--set", "data.dataset=" + _jsonl(
        t, [{**GOOD, "id": "q1"}, {**GOOD, "id": "q1"}])], ["train.jsonl:2: duplicate id 'q1'", "train.jsonl:1"]),
    ("dataset-too-few-rows", lambda t: [*BESPOKE, "--set", "data.n_train=5", "--set", "data.dataset=" + _jsonl(
        t, [GOOD, GOOD])], ["data.n_train + data.n_heldout = 5", "has 2 rows", "lower one of them"]),
]


# Issue 23: the three that printed tracebacks, then a sweep of paths (files, directories, unwritable places),
# YAML everywhere a value is read, empty and huge files, and Prefect's settings in the environment. A builder
# may return (argv, extra environment).
CLI_CASES += [
    ("artifacts-dir-is-a-file", lambda t: ["--set", f"artifacts_dir={_file(t, 'store')}"],
     ["artifacts_dir", "is a file, not a directory", "--set artifacts_dir=DIR"]),
    ("set-value-not-yaml", lambda t: ["--set", "sampling.temperature=[1,"],
     ["--set sampling.temperature=[1,: the value is not valid YAML", "write a YAML value"]),
    ("params-is-a-directory", lambda t: ["--params", _dir(t, "conf")], ["conf: is a directory", "--params PATH"]),
    ("artifacts-dir-under-a-file", lambda t: ["--set", f"artifacts_dir={_file(t, 'store')}/sub"],
     ["store' is a file, so no directory can be made under it"]),
    ("artifacts-dir-unwritable", lambda t: ["--set", f"artifacts_dir={UNWRITABLE}"],
     ["artifacts_dir '/sys/varreason-test/out' (its nearest existing parent '/sys') is not writable"]),
    ("results-dir-is-a-file", lambda t: ["--set", f"results_dir={_file(t, 'results')}"],
     ["results_dir", "is a file, not a directory", "--set results_dir=DIR"]),
    ("results-dir-unwritable", lambda t: ["--set", f"results_dir={UNWRITABLE}"], ["results_dir", "not writable"]),
    ("set-value-open-mapping", lambda t: ["--set", "prompt.reasoner={question"],
     ["--set prompt.reasoner={question: the value is not valid YAML", "quote a string"]),
    ("set-value-bad-token", lambda t: ["--set", "em.rounds=@2"], ["em.rounds=@2", "not valid YAML", "'@'"]),
    ("set-empty-key", lambda t: ["--set", "=3"], ["--set '=3': no key before '='"]),
    ("set-empty-key-part", lambda t: ["--set", "em..rounds=1"], ["override 'em..rounds': empty key"]),
    ("set-inside-unset-section", lambda t: ["--set", "train.launcher.kind=torchrun"],
     ["'launcher' is not a section", "set it whole: --set 'train.launcher={key: value, ...}'"]),
    ("params-empty-file", lambda t: ["--params", _file(t, "empty.yaml", b"")],
     ["empty.yaml: expected a mapping with 'default_profile' and 'profiles'"]),
    ("params-huge-file", lambda t: ["--params", _file(t, "huge.yaml", b"a: 1\n" * (1 << 20))],
     ["huge.yaml: 5.0 MiB, too big for a YAML settings file", "names the right file"]),
    ("params-binary-file", lambda t: ["--params", _file(t, "model.safetensors", bytes(range(256)) * 64)],
     ["model.safetensors: not UTF-8", "re-save it as UTF-8"]),
    ("params-profile-not-a-mapping", lambda t: ["--params", _params(t, lambda s: s.replace(
        "profiles:\n", "profiles:\n  flat: [1, 2]\n", 1)), "--profile", "flat"],
     ["profile 'flat': expected a mapping of sections", "got list"]),
    ("params-extends-not-a-name", lambda t: ["--profile", "two", "--params", _params(t, lambda s: s.replace(
        "profiles:\n", "profiles:\n  two: {extends: [tiny, smoke]}\n", 1))],
     ["profile 'two': extends must be one profile name, got ['tiny', 'smoke']"]),
    ("params-default-profile-not-a-name", lambda t: ["--params", _params(t, lambda s: s.replace(
        "default_profile: tiny", "default_profile: [tiny]", 1))], ["default_profile must be a profile name"]),
    ("seeds-repeated", lambda t: ["--seeds", "0", "1", "0"], ["--seeds 0 1 0: a seed is given twice"]),
    ("seeds-negative", lambda t: ["--seeds", "-1"], ["--seeds -1: seeds must be >= 0"]),
    ("model-path-is-a-file", lambda t: ["--set", "model.kind=pretrained", "--set",
                                        f"model.name_or_path={_file(t, 'ckpt/model.safetensors')}"],
     ["model.name_or_path", "is a file, not a checkpoint directory", "config.json"]),
    ("model-dir-without-config", lambda t: ["--set", "model.kind=pretrained", "--set",
                                            f"model.name_or_path={_dir(t, 'ckpt')}"],
     ["ckpt' holds no config.json", "save_pretrained"]),
    ("launcher-config-not-yaml", lambda t: ["--set", LAUNCHER % _file(t, "fsdp.yaml", "fsdp_config: {a: [1\n")],
     ["train.launcher.config", "fsdp.yaml: not valid YAML at line 2"]),
    ("launcher-config-missing", lambda t: ["--set", LAUNCHER % (t / "fsdp.yaml")],
     ["train.launcher.config", "fsdp.yaml: not found", "deploy/accelerate/fsdp.yaml"]),
    ("launcher-config-is-a-directory", lambda t: ["--set", LAUNCHER % _dir(t, "accel")],
     ["train.launcher.config", "accel: is a directory"]),
    ("launcher-config-not-a-mapping", lambda t: ["--set", LAUNCHER % _file(t, "fsdp.yaml", "- a\n- b\n")],
     ["train.launcher.config", "expected a YAML mapping", "got list"]),
    ("launcher-config-empty", lambda t: ["--set", LAUNCHER % _file(t, "fsdp.yaml", "")],
     ["train.launcher.config", "expected a YAML mapping", "got NoneType"]),
    ("dataset-dir-of-directories", lambda t: [*BESPOKE, "--set", f"data.dataset={_dir(t, 'ds/sub.jsonl')[:-10]}"],
     ["the directory holds no .jsonl/.json/.parquet files"]),
    ("dataset-empty-file", lambda t: [*BESPOKE, "--set", f"data.dataset={_file(t, 'train.jsonl', b'')}"],
     ["holds no rows", "non-empty file"]),
    ("dataset-not-parquet", lambda t: [*BESPOKE, "--set", f"data.dataset={_file(t, 'train.parquet', 'a,b')}"],
     ["train.parquet: not a readable parquet file", "convert it to .jsonl"]),
    ("dataset-json-not-json", lambda t: [*BESPOKE, "--set", f"data.dataset={_file(t, 'train.json', '[{')}"],
     ["train.json:1: not valid JSON", "fix the syntax"]),
    ("dataset-wrong-suffix", lambda t: [*BESPOKE, "--set", f"data.dataset={_file(t, 'train.csv', 'a,b')}"],
     ["train.csv: expected .jsonl, .json or .parquet"]),
    ("prefect-home-is-a-file", lambda t: ([], {"PREFECT_HOME": _file(t, "home")}),
     ["PREFECT_HOME", "is a file, not a directory", "set PREFECT_HOME to a writable directory"]),
    ("prefect-storage-unwritable", lambda t: ([], {"PREFECT_LOCAL_STORAGE_PATH": UNWRITABLE}),
     ["PREFECT_LOCAL_STORAGE_PATH", "not writable"]),
    ("prefect-api-url-not-a-url", lambda t: ([], {"PREFECT_API_URL": "127.0.0.1:4200"}),
     ["PREFECT_API_URL='127.0.0.1:4200' is not an http(s) URL"]),
    ("prefect-api-url-unreachable", lambda t: ([], {"PREFECT_API_URL": "http://127.0.0.1:9/api"}),
     ["PREFECT_API_URL='http://127.0.0.1:9/api' is not reachable", "`make server`"]),
]
SAFE_DIRS = ("artifacts_dir", "results_dir")  # cases that do not name these get their own, under tmp


@pytest.mark.parametrize("argv,needles", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_error_line(tmp_path, argv, needles):
    built = argv(tmp_path)
    args, env = built if isinstance(built, tuple) else (built, {})
    for key in SAFE_DIRS:  # a case that slipped through would start a run: never in the project's own dirs
        if not any(a.startswith(f"{key}=") for a in args):
            args = [*args, "--set", f"{key}={tmp_path / key}"]
    res = _cli(*args, env=env)
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_cli_argparse_errors_have_no_traceback():
    res = _cli("--seeds", "x")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "argument --seeds: invalid int value: 'x'" in res.stderr.strip().splitlines()[-1]


def test_cli_keeps_the_traceback_of_a_genuine_bug(monkeypatch):
    """Only UserError is turned into an error line: a bug (here a RuntimeError in the config loader) propagates."""
    import flows.cli as cli

    def broken(*a, **k):
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setattr(cli, "load_config", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["--profile", "tiny"])


def test_good_input_passes_the_checks_and_a_user_error_from_the_flow_is_one_line(tmp_path, monkeypatch, capsys):
    """Valid Bespoke rows get through every pre-check to the flow call; a UserError the flow raises (a task
    meeting bad data) is printed as one error line with exit 2, like the pre-checks' errors."""
    import types

    import flows.cli as cli

    flow = types.ModuleType("flows.vr_em")  # stands in for the flow module: importing Prefect costs ~10 s here
    monkeypatch.setitem(sys.modules, "flows.vr_em", flow)
    monkeypatch.setattr(cli, "start_services", lambda: None)  # no reaper, no Prefect server for a stand-in
    calls = []
    flow.vr_em = lambda **kw: calls.append(kw) or {}
    argv = [*BESPOKE, "--set", "data.dataset=" + _jsonl(tmp_path, [GOOD, {**GOOD, "think_content": ""}])]
    assert cli.main(argv) == 0 and calls[0]["overrides"]["data.task"] == "bespoke"

    def bad_flow(**kw):
        raise DataError("rows.jsonl:3: field 'x' is empty;\nfill it in")

    flow.vr_em = bad_flow
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == "error: rows.jsonl:3: field 'x' is empty; fill it in\n"


def test_artifact_store_under_a_file_is_a_user_error_outside_the_cli_too(tmp_path):
    """A deployment run skips the CLI's checks; the store itself turns the NotADirectoryError of issue 23 into
    one ConfigError line (the flow reports it as a user error, not a crash inside io._builder_lock)."""
    from varreason.io import store_id

    root = Path(_file(tmp_path, "store"))
    with pytest.raises(ConfigError, match=r"artifacts_dir: cannot create .*store/step .*a file is in the way"):
        produce(root, "step", {"a": 1}, lambda d: (d / "x").write_text("1"))
    with pytest.raises(ConfigError, match="a file is in the way"):
        store_id(root / "sub")


def test_error_family():
    from varreason.preflight import PreflightError

    assert issubclass(ConfigError, UserError) and issubclass(DataError, UserError)
    assert issubclass(PreflightError, ConfigError) and issubclass(UserError, ValueError)


# ------------------------------------------------------------------------------------------ (b) dataset
LOADER_CASES = [
    ("empty-answer", [{**GOOD, "solution_content": "  "}], ":1: field 'solution_content' is empty; fill it in"),
    ("empty-question", [GOOD, {**GOOD, "question_content": ""}], ":2: field 'question_content' is empty"),
    ("missing-question", [{k: v for k, v in GOOD.items() if k != "question_content"}],
     ":1: field 'question_content' is missing"),
    ("null-trace-field", [{**GOOD, "think_content": None}], ":1: field 'think_content' is missing"),
    ("wrong-type", [{**GOOD, "think_content": 3}], ":1: field 'think_content' must be a string, got int"),
    ("not-json", [GOOD, b"{question_content: 1}\n"], ":2: not valid JSON"),
    ("not-an-object", [[1, 2, 3]], ":1: expected a JSON object"),
    ("non-utf8", [GOOD, GOOD, b'{"question_content": "\xff\xfe"}\n'], ":3: not UTF-8"),
    ("duplicate-id", [{**GOOD, "id": 7}, GOOD, {**GOOD, "id": 7}], ":3: duplicate id 7 (first at"),
    ("empty-file", [b"\n\n"], "holds no rows"),
]


@pytest.mark.parametrize("rows,needle", [c[1:] for c in LOADER_CASES], ids=[c[0] for c in LOADER_CASES])
def test_bad_rows_raise_data_error_naming_file_line_and_field(tmp_path, rows, needle):
    path = _jsonl(tmp_path, rows)
    with pytest.raises(DataError) as err:
        bespoke.load_rows(path)
    msg = str(err.value)
    assert needle in msg and "\n" not in msg, msg
    assert "train.jsonl" in msg


def test_bad_files_and_dirs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no .jsonl/.json/.parquet"):
        bespoke.load_rows(str(tmp_path / "empty"))
    (tmp_path / "rows.json").write_text('[{"question_content": ')
    with pytest.raises(DataError, match=r"rows.json:1: not valid JSON"):
        bespoke.load_rows(str(tmp_path / "rows.json"))
    (tmp_path / "rows.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="expected .jsonl, .json or .parquet"):
        bespoke.load_rows(str(tmp_path / "rows.csv"))


def test_row_policies_are_counted_in_the_task_stats(tmp_path):
    """Empty think_content on a seed row -> no gold trace (n_seed_empty); no \\boxed{} -> answer "" (n_code);
    a repeated question -> kept (n_duplicate_questions)."""
    from varreason.pipeline.common import questions, stats
    from varreason.steps import run_step

    rows = [{**GOOD, "question_content": f"q{i}", "think_content": ""} for i in range(3)]
    rows += [{**GOOD, "solution_content": "def f(): pass"}, GOOD]  # code problem; GOOD repeats row 3's question
    over = {"data.dataset": _jsonl(tmp_path, rows), "data.n_train": 5, "data.n_heldout": 0,
            "data.n_seed_traces": 5, "artifacts_dir": str(tmp_path / "a")}
    cfg = load_config(PARAMS, "qwen3", over)
    ref = run_step("build-task", cfg, {}, progress=False)
    st = stats(ref)
    assert (st["n_seed"], st["n_seed_empty"], st["n_code"], st["n_duplicate_questions"]) == (2, 3, 1, 1)
    assert sum(q["gold_trace"] is not None for q in questions(ref)) == 2


class _CharTok:
    """Enough of a tokenizer for ``encode_examples``: one id per character."""

    eos_token_id = 0

    def encode(self, s: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in s]


def test_overlong_examples_truncated_or_dropped_and_counted():
    ex = [Example("ab", "cd"), Example("ab", "c" * 50), Example("p" * 20, "r"), Example("p" * 9, "r")]
    counts: dict = {}
    enc = encode_examples(_CharTok(), ex, max_length=10, counts=counts)
    assert counts == {"n_truncated": 2, "n_dropped_overlong": 1}  # 50-char response cut; 9+1+eos cut; 20 dropped
    assert [len(e.ids) for e in enc] == [5, 10, 10]


def test_training_on_nothing_is_a_data_error():
    cfg = load_config(PARAMS, "smoke")
    with pytest.raises(DataError, match="no training example with positive weight.*model.max_length=10"):
        train_sft(None, _CharTok(), [Example("p" * 20, "r"), Example("ab", "cd", 0.0)], cfg.train, 1, 10, 0)


def test_impossible_arith_request_is_a_config_error():
    with pytest.raises(ConfigError, match="raise data.max_operand"):
        arith.generate(n_train=4, n_heldout=1, n_seed_traces=1, levels=[1], max_operand=2, seed=0, ops="+")


BENCH = {"id": "b1", "problem": "What is $1+1$?", "answer": "2"}
BENCH_CASES = [
    ("bench-missing-answer", [{k: v for k, v in BENCH.items() if k != "answer"}], ":1: field 'answer' is missing"),
    ("bench-empty-problem", [BENCH, {**BENCH, "id": "b2", "problem": " "}], ":2: field 'problem' is missing or empty"),
    ("bench-duplicate-id", [BENCH, BENCH], ":2: duplicate id 'b1' (first at"),
    ("bench-non-utf8", [BENCH, b'{"id": "b2", "problem": "\xe9"}\n'], ":2: not UTF-8"),
    ("bench-empty", [b" \n"], ": no rows; restore the file"),
]


@pytest.mark.parametrize("rows,needle", [c[1:] for c in BENCH_CASES], ids=[c[0] for c in BENCH_CASES])
def test_bad_benchmark_rows_raise_data_error(tmp_path, rows, needle):
    from varreason.eval.harness import check_benchmark

    with pytest.raises(DataError) as err:
        check_benchmark(_jsonl(tmp_path, rows, "bench.jsonl"))
    assert needle in str(err.value) and "bench.jsonl" in str(err.value), str(err.value)


def test_shipped_benchmarks_pass_the_check():
    from varreason.eval.harness import DATA_DIR, MATH_TASKS, check_benchmark

    counts = {t: check_benchmark(DATA_DIR / f"{t.removeprefix('vr_')}.jsonl") for t in MATH_TASKS}
    assert counts == {"vr_math500": 500, "vr_aime24": 30, "vr_aime25": 30, "vr_amc23": 40}
    with pytest.raises(DataError, match="benchmark file not found"):
        check_benchmark(DATA_DIR / "missing.jsonl")


# ------------------------------------------------------------------------------------- (c) model outputs
def test_no_end_of_thought_parses_to_none():
    prompt = load_config(PARAMS, "tiny").prompt
    assert parse_response(prompt, "1+2 then 3 and never closes").trace is None
    assert parse_response(prompt, prompt.end_of_thought + "no solution block").solution is None


@pytest.mark.parametrize("pi,q,n_invalid", [
    ([[NAN, -1.0]], [[-1.0, -1.0]], 1),   # NaN under pi
    ([[-1.0, -1.0]], [[-1.0, NAN]], 1),   # NaN under q
    ([[-1.0, -1.0]], [[NINF, -1.0]], 1),  # q could not have sampled it
    ([[NINF, -1.0]], [[-1.0, -1.0]], 0),  # pi deems it impossible: valid, weight 0 later
], ids=["nan-pi", "nan-q", "neg-inf-q", "neg-inf-pi"])
def test_non_finite_log_probs_policy(pi, q, n_invalid):
    d, st = W.length_normalised_log_ratio(torch.tensor(pi), torch.tensor([2]), torch.tensor(q), torch.tensor([2]))
    assert st["n_invalid"] == n_invalid
    lr, st_r = W.log_rho(torch.zeros(1, 1), d.view(1, 1))
    assert lr.item() == NINF and st_r["n_zero_weight"] == 1 and not lr.isnan().any()


def test_empty_trace_under_the_library_is_invalid():
    d, st = W.length_normalised_log_ratio(torch.zeros(2, 1), torch.tensor([0, 1]), torch.zeros(2, 1),
                                          torch.tensor([0, 1]))
    assert st["n_invalid"] == 1 and math.isnan(d[0]) and d[1] == 0


def test_every_trace_zero_weight_gives_zero_not_nan():
    lr = torch.tensor([[NINF, NINF, NINF], [0.0, NINF, -1.0]], dtype=torch.float64)
    rt, st = W.self_normalise(lr)
    assert st["n_dead_questions"] == 1 and rt[0].tolist() == [0.0, 0.0, 0.0] and not rt.isnan().any()
    ess, st_s = W.effective_sample_size(rt)
    assert ess[0] == 0 and math.isfinite(st_s["ess_mean"])
    bound, st_i = W.iwae_bound(lr)
    assert bound[0] == NINF and math.isfinite(st_i["iwae_mean"])
    w, st_f = W.forward_kl_weights(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    assert st_f["n_dead_questions"] == 1 and w[0].tolist() == [0.0, 0.0] and w[1].tolist() == [1.0, 0.0]


def test_estimators_zero_accuracy_and_empty_answer():
    ll, st = acc_log_likelihood(EstimatorInputs(correct=torch.tensor([[0.0, 0.0], [1.0, 0.0]])))
    assert ll[0] == NINF and st["frac_zero_acc"] == 0.5
    g, _ = gml_log_likelihood(EstimatorInputs(answer_logps=torch.tensor([[NAN], [-1.0]]),
                                              answer_len=torch.tensor([0, 1])))
    assert math.isnan(g[0]) and g[1] == -1.0  # no answer tokens -> invalid (NaN -> weight 0 in log_rho)
    with pytest.raises(ValueError, match="acc estimator needs answer rollouts"):
        acc_log_likelihood(EstimatorInputs())


def _row(qid, k, log_rho, shared_len=5, rho_tilde=0.0):
    return ScoredTrace(qid, k, f"{qid}-t{k}", shared_len, log_rho, rho_tilde, f"{qid}-s{k}")


@pytest.mark.parametrize("select", [select_top1, select_weighted], ids=["top1", "weighted"])
def test_all_zero_question_falls_back_to_gold_or_is_dropped(select):
    rows = [_row("a", 0, NINF), _row("a", 1, NAN),                   # all zero, has gold -> fallback
            _row("b", 0, NINF), _row("b", 1, 2.0, shared_len=99),    # zero or over-long, no gold -> dropped
            _row("c", 0, -1.0, rho_tilde=1.0)]
    out, st = select(rows, 10, {"a": ("gold", "sol")})
    assert [(s.qid, s.source) for s in out] == [("a", -1), ("c", 0)]
    assert st == {"n_selected": 1.0, "n_fallback": 1.0, "n_dropped": 1.0, "n_over_cutoff": 1.0}


def _art(root, step, name, rows, extra=None):
    def build(out):
        write_rows(out / name, rows)
        if extra:
            write_json(out / "stats.json", extra)

    return produce(root, step, {"rows": json.dumps(rows, default=str), "name": name}, build)


def test_weigh_and_select_steps_count_every_policy(tmp_path):
    """The pipeline steps on fabricated outputs: q a has an unfinished trace and a NaN one; b has -inf under q
    and an empty trace; c and d never close a thought (c has a gold trace, d does not)."""
    from varreason.pipeline.common import rows as read
    from varreason.pipeline.common import stats
    from varreason.steps import run_step

    root = str(tmp_path)
    cfg = load_config(PARAMS, "tiny", {"objective.mix_seed_data": False, "artifacts_dir": root})
    fin = {("a", 0), ("a", 2), ("b", 0), ("b", 1), ("b", 2)}
    traces = [{"qid": q, "k": k, "trace": "" if (q, k) == ("b", 1) else f"{q}{k}", "finished": (q, k) in fin}
              for q in "abcd" for k in range(3)]
    lp = {("a", 0): [-1.0, -1.0], ("a", 2): [NAN, -1.0], ("b", 0): [-1.0, -1.0], ("b", 1): [-0.5], ("b", 2): [-2.0]}
    lq = {**lp, ("a", 2): [-1.0, -1.0], ("b", 0): [NINF, -1.0]}
    scores = [{"qid": q, "k": k, "think_pi": lp[q, k], "think_q": lq[q, k], "answer_pi": [-0.1, -0.3]}
              for q, k in sorted(fin)]
    task = [{"id": q, "question": "1+2", "answer": "3", "level": 1, "split": "train",
             "gold_trace": "3" if q == "c" else None} for q in "abcd"]
    t_ref = _art(root, "traces", "traces.parquet", traces)
    w_ref = run_step("weigh-traces", cfg, {"traces": t_ref, "scores": _art(root, "scores", "scores.parquet", scores)},
                     est="gml")
    st = stats(w_ref)
    assert (st["n_unfinished"], st["n_empty_traces"], st["n_dead_questions"]) == (7, 1, 2)
    assert st["n_invalid_ratio"] == 7 + 2  # unfinished (no tokens) + NaN under pi + -inf under q
    assert st["n_zero_weight"] == 9 and st["K"] == 3
    w = {(r["qid"], r["k"]): r for r in read(w_ref, "weights.parquet")}
    assert not any(math.isnan(r["rho_tilde"]) for r in w.values())
    assert math.isfinite(w["b", 1]["log_rho"])  # the empty trace keeps its weight (documented policy)
    task_ref = _art(root, "task", "questions.parquet", task, {"modulus": None})
    sel = run_step("build-reasoner-set", cfg, {"weights": w_ref, "traces": t_ref, "task": task_ref}, est="gml")
    st_sel = stats(sel)
    assert (st_sel["n_selected"], st_sel["n_fallback"], st_sel["n_dropped"]) == (2, 1, 1)
    assert sorted(r["qid"] for r in read(sel, "examples.parquet")) == ["a", "b", "c"]


def test_acc_question_with_every_answer_wrong_is_dead(tmp_path):
    from varreason.pipeline.common import stats
    from varreason.steps import run_step

    root = str(tmp_path)
    cfg = load_config(PARAMS, "tiny", {"artifacts_dir": root})
    traces = [{"qid": q, "k": k, "trace": f"{q}{k}", "finished": True} for q in "ab" for k in range(2)]
    scores = [{"qid": q, "k": k, "think_pi": [-1.0], "think_q": [-1.0], "answer_pi": [-0.1]}
              for q in "ab" for k in range(2)]
    answers = [{"qid": q, "k": k, "correct": [q == "b" and k == 0, False], "first_correct": "x" if q == "b" else None}
               for q in "ab" for k in range(2)]
    ref = run_step("weigh-traces", cfg, {"traces": _art(root, "traces", "traces.parquet", traces),
                                         "scores": _art(root, "scores", "scores.parquet", scores),
                                         "answers": _art(root, "answers", "answers.parquet", answers)}, est="acc")
    st = stats(ref)
    assert st["n_dead_questions"] == 1 and st["frac_zero_acc"] == 0.75 and st["n_zero_weight"] == 3


class _ScriptedSampler:
    """Stands in for a backend: returns the given texts (finish "stop" unless the text ends with "..."),
    so the sampling steps see exactly the malformed outputs under test."""

    def __init__(self, texts):
        self.texts = texts

    def generate(self, prompts, params, seeds):
        from varreason.backends.base import Completion, Rollouts

        def comp(t):
            finish = "length" if t.endswith("...") else "stop"
            return Completion(t, [1] * len(t), [-1.0] * len(t), [-1.0] * len(t), finish)

        return Rollouts([[comp(self.texts[(i * params.n + j) % len(self.texts)]) for j in range(params.n)]
                         for i in range(len(prompts))], n_generated=1)


def test_sampling_steps_count_unfinished_empty_and_unparsed_outputs(tmp_path, monkeypatch):
    from varreason.pipeline import sample
    from varreason.pipeline.common import rows as read
    from varreason.pipeline.common import stats
    from varreason.steps import run_step

    root = str(tmp_path)
    cfg = load_config(PARAMS, "tiny", {"sampling.traces_per_question": 4, "baselines.rft_samples": 4,
                                       "artifacts_dir": root})
    task = _art(root, "task", "questions.parquet", [{"id": f"q{i}", "question": "1+2", "answer": "3", "level": 1,
                                                    "split": "train", "gold_trace": None} for i in range(2)])
    ckpt = _art(root, "ckpt", "x.parquet", [{"a": 1}])
    eot, bos, eos = cfg.prompt.end_of_thought, cfg.prompt.begin_of_solution, cfg.prompt.end_of_solution
    monkeypatch.setattr(sample, "make_sampler", lambda *a: _ScriptedSampler(["3", "", "1+2 is...", "3"]))
    tr = run_step("sample-traces", cfg, {"q": ckpt, "task": task}, progress=False, rnd=1)
    st = stats(tr)
    assert (st["n_traces"], st["n_unfinished"], st["n_empty"]) == (8, 2, 2)
    assert [r["finished"] for r in read(tr, "traces.parquet")][:4] == [True, True, False, True]
    texts = [f"3{eot}{bos}\\boxed{{3}}", "no marker at all", f"3{eot}no solution block", f"3{eot}{bos}\\boxed{{4}}"]
    monkeypatch.setattr(sample, "make_sampler", lambda *a: _ScriptedSampler(texts))
    resp = run_step("sample-rft", cfg, {"pi": ckpt, "task": task}, progress=False, rnd=1)
    st = stats(resp)
    assert (st["n_responses"], st["n_unparsed"], st["accuracy"]) == (8, 4, 0.25)

