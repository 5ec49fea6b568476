"""A throw-away copy of this repository for DVC tests: git-initialised, DVC config copied, and the profile DVC
tracks (tiny) replaced by the resolved smoke values, so `dvc repro` runs the real pipeline in about a minute."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from varreason.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def make_repo(dest: Path, **overrides) -> Path:
    """Copy tracked and untracked-not-ignored files of this checkout to ``dest``; tiny := smoke + overrides."""
    files = git(ROOT, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    cfg = load_config(ROOT / "params.yaml", "smoke", overrides).model_dump(exclude={"profile"})
    cfg.update(artifacts_dir="artifacts", results_dir="results/tiny")
    doc = yaml.safe_load((dest / "params.yaml").read_text())
    doc["profiles"]["tiny"] = cfg
    (dest / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    run_py(dest, "-m", "varreason.pipeline.run_stage", "sync")
    git(dest, "init", "-q")
    git(dest, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    git(dest, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    return dest


def env() -> dict:
    e = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
         "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    e.pop("PYTHONPATH", None)
    e["VR_DVC"] = dvc_exe()  # the copy has no .venv of its own: the flow's versioning task uses this one
    return e


def run_py(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``repo`` (its own Prefect home; the ephemeral server may start slowly on a busy box)."""
    e = {**env(), "PREFECT_HOME": str(repo / ".prefect"), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
    e.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    res = subprocess.run([sys.executable, *args], cwd=repo, env=e, capture_output=True, text=True)
    if res.returncode != 0:
        raise AssertionError(f"python {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def dvc_exe() -> str:
    for cand in (os.environ.get("VR_DVC"), Path(sys.executable).parent / "dvc", shutil.which("dvc")):
        if cand and Path(cand).exists():
            return str(cand)
    raise FileNotFoundError("dvc not installed: `make install` puts it in .venv (the `dvc` extra)")


def dvc(repo: Path, *args: str, check: bool = True) -> str:
    res = subprocess.run([dvc_exe(), *args], cwd=repo, env=env(), capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res.stdout + res.stderr


def ran_stages(output: str) -> set[str]:
    """Names of the stages `dvc repro` executed (it prints "Running stage 'NAME':")."""
    return set(re.findall(r"Running stage '([^']+)'", output))
