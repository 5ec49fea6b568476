"""Per-step code fingerprints (varreason/fingerprint.py): what counts as a change, and what a step's closure is."""

from pathlib import Path

import pytest

from varreason import fingerprint as fp
from varreason.config import load_config
from varreason.steps import STEPS, fingerprint, step_key

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def test_comments_docstrings_and_formatting_do_not_count(tmp_path):
    a = tmp_path / "a.py"
    a.write_text('"""Module doc."""\n\ndef f(x):\n    """Doc."""\n    return x + 1  # why\n')
    h = fp.source_hash(a)
    b = tmp_path / "b.py"
    b.write_text('"""Other doc."""\n# a comment\n\n\ndef f( x ):\n    """Other."""\n\n    return (x + 1)\n')
    assert fp.source_hash(b) == h
    c = tmp_path / "c.py"
    c.write_text('def f(x):\n    return x + 2\n')
    assert fp.source_hash(c) != h
    d = tmp_path / "d.py"  # a function whose whole body is its docstring still differs from one that is empty
    d.write_text('def f(x):\n    """Only a docstring."""\n')
    assert fp.source_hash(d) != h


def test_lazy_imports_inside_functions_are_in_the_closure():
    # sample.py imports the backends only inside make_sampler, and backends/__init__ imports hf / vllm lazily
    mods = fp.closure("varreason.pipeline.sample")
    assert {"varreason.backends", "varreason.backends.hf", "varreason.backends.vllm"} <= set(mods)
    assert "varreason.weights" not in mods and "varreason.report" not in mods


@pytest.mark.parametrize("step,must,must_not", [
    ("sample-traces", {"backends/hf.py", "pipeline/sample.py"}, {"weights.py", "report.py", "training.py",
                                                                "eval/harness.py"}),
    ("score-traces", {"scoring.py", "rounds.py"}, {"weights.py", "backends/hf.py", "steps.py"}),
    ("weigh-traces", {"weights.py", "estimators.py"}, {"backends/hf.py", "scoring.py"}),
    ("train-pi0", {"training.py", "modeling.py"}, {"backends/hf.py", "weights.py", "eval/grader.py"}),
    ("init-backbone", {"modeling.py"}, {"eval/grader.py", "arith.py"}),
    ("evaluate", {"eval/harness.py", "eval/lm.py", "backends/hf.py"}, {"weights.py", "training.py"}),
])
def test_each_step_fingerprints_exactly_the_code_it_reaches(step, must, must_not):
    cfg = load_config(PARAMS, "tiny")
    files = {f.removeprefix("varreason/") for f in fingerprint(STEPS[step], cfg)["code"]}
    assert must <= files and not (must_not & files), (step, sorted(files))
    assert not {"config.py", "faults.py"} & files  # NEUTRAL: values are in the key; fault points change nothing


def test_data_files_and_packages_are_in_the_evaluation_key():
    cfg = load_config(PARAMS, "tiny")
    f = fingerprint(STEPS["evaluate"], cfg)
    assert "varreason/eval/tasks/vr_arith.yaml" in f["data"] and "varreason/eval/tasks/utils.py" in f["data"]
    assert {"lm-eval", "math-verify", "torch", "transformers"} <= set(f["packages"])
    assert "vllm" not in f["packages"]  # hf backend: vLLM's version cannot change this run
    assert "vllm" in fingerprint(STEPS["evaluate"], load_config(PARAMS, "tiny", {"sampling.backend": "vllm"}))[
        "packages"]


def test_key_moves_with_declared_reads_only():
    cfg = load_config(PARAMS, "tiny")
    with pytest.raises(ValueError, match="takes inputs"):
        step_key("train-posterior", cfg, {}, {"rnd": 1})
    from varreason.io import ArtifactRef

    refs = {"init": ArtifactRef(path="x", sha="1"), "set": ArtifactRef(path="y", sha="2")}
    base = step_key("train-posterior", cfg, refs, {"rnd": 1})
    same = load_config(PARAMS, "tiny", {"train.steps": 999, "train.checkpoint_every": 7, "eval.n_samples": 8})
    assert step_key("train-posterior", same, refs, {"rnd": 1}) == base  # not read / unkeyed
    other = load_config(PARAMS, "tiny", {"train.posterior_steps": 151})
    assert step_key("train-posterior", other, refs, {"rnd": 1}) != base
    assert step_key("train-posterior", cfg, refs, {"rnd": 2}) != base


def test_a_builder_cannot_read_an_undeclared_key():
    from varreason.steps import ConfigView, UndeclaredRead

    cfg = load_config(PARAMS, "tiny")
    view = ConfigView(cfg, frozenset({"sampling.temperature", "model"}), "demo")
    assert view.sampling.temperature == 0.7 and view.model.kind == "tiny"
    with pytest.raises(UndeclaredRead, match="sampling.top_p"):
        _ = view.sampling.top_p
    with pytest.raises(UndeclaredRead, match="'seed'"):
        _ = view.seed
