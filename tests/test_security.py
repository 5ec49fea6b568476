"""Security defaults, checked statically: no pickle loads from disk, safetensors-only model loading,
trust_remote_code off in every profile, no credential fields in the config, the Prefect server on loopback."""

import re
from pathlib import Path

import yaml

from varreason.config import ExperimentConfig, ModelConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("varreason", "tasks", "flows", "benchmarks", "deploy")
# Unpickling runs arbitrary code: none of these may appear in the library. (accelerate's own save_state files in
# the launcher's work dir are loaded by accelerate with weights_only=True; varreason/launch.py pins that.)
UNSAFE = re.compile(r"torch\.load\(|pickle\.loads?\(|import pickle|from pickle|import dill|import joblib|"
                    r"weights_only\s*=\s*False|trust_remote_code\s*=\s*True|load_format\s*=\s*['\"](pt|auto)")
ALLOWED: dict[str, str] = {}  # "path": "why" for a justified exception (none today)


def _sources():
    for pkg in LIBRARY:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def test_no_pickle_loading_in_the_library():
    hits = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in _sources()
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if UNSAFE.search(line) and str(p.relative_to(ROOT)) not in ALLOWED]
    assert len(list(_sources())) > 30
    assert not hits, "\n".join(hits)


def test_model_weights_load_as_safetensors_only():
    """Every model from_pretrained passes use_safetensors=True (transformers would otherwise fall back to a
    pickled pytorch_model.bin); tokenizers are JSON files. vLLM engines get load_format='safetensors'."""
    calls = []
    for p in _sources():
        text = p.read_text()
        for m in re.finditer(r"AutoModel\w*\.from_pretrained\(", text):
            call = text[m.start(): text.index(")", m.end()) + 1]
            calls.append(call)
            assert "use_safetensors=True" in call, f"{p.relative_to(ROOT)}: {call}"
        if re.search(r"\bLLM\(|_llm_cls\(", text):
            assert 'load_format="safetensors"' in text, p
    assert len(calls) >= 3


def test_trust_remote_code_is_off_unless_a_profile_sets_it():
    assert ModelConfig.model_fields["trust_remote_code"].default is False
    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert len(doc["profiles"]) >= 3
    for name in doc["profiles"]:
        assert load_config(ROOT / "params.yaml", name).model.trust_remote_code is False, name
    assert "trust_remote_code" not in (ROOT / "params.yaml").read_text()


def test_no_credential_fields_in_config_or_params():
    """Credentials come from the environment or Prefect blocks: no config key could carry one into params,
    dvc.lock, cache keys or the run-info artifact."""
    secretish = re.compile(r"token|secret|password|passwd|api_key|access_key|credential", re.I)

    def fields(model, prefix=""):
        for name, f in model.model_fields.items():
            yield prefix + name
            sub = f.annotation
            if isinstance(sub, type) and hasattr(sub, "model_fields"):
                yield from fields(sub, f"{prefix}{name}.")

    def keys(node, prefix=""):
        for k, v in (node.items() if isinstance(node, dict) else ()):
            yield prefix + str(k)
            yield from keys(v, f"{prefix}{k}.")

    names = list(fields(ExperimentConfig))
    assert "model.trust_remote_code" in names and "train.lr" in names
    # token counts are not credentials
    bad = [n for n in names + list(keys(yaml.safe_load((ROOT / "params.yaml").read_text())))
           if secretish.search(n.split(".")[-1]) and not n.split(".")[-1].endswith(("_tokens", "tokens_per_s"))]
    assert not bad, bad


def _make_rule(target: str) -> list[str]:
    """The recipe lines of ``target`` in the Makefile (tab-indented lines after ``target:``)."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}\s*:", line))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_make_server_listens_on_loopback_only():
    """`make server` runs deploy/server.sh, which starts Prefect (and, with DB=postgres, PostgreSQL) on 127.0.0.1."""
    recipe = _make_rule("server")
    assert any("deploy/server.sh" in line for line in recipe), recipe
    script = (ROOT / "deploy" / "server.sh").read_text()
    start = [line for line in script.splitlines() if "server start" in line]
    assert len(start) == 1 and '--host "$HOST"' in start[0], start
    assert re.search(r"^HOST=127\.0\.0\.1$", script, re.M)
    assert "0.0.0.0" not in (ROOT / "Makefile").read_text() + script
