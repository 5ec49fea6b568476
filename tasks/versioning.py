"""Task: put a finished flow run under DVC, so `dvc status` is clean and `dvc repro` is a no-op afterwards.

For the profile ``dvc.yaml`` tracks (its ``vars``), every stage of the registry is run in this process
(each a cache hit in the artifact store the flow just filled: same pipeline call, keyed by input shas), which
materialises the flow's artifacts at their DVC paths; then ``dvc commit -f`` records deps, params and outs in
``dvc.lock``, ``dvc push`` sends the outs to the default remote, and a Prefect artifact lists the DVC hashes with
the git commit and params digest. DVC runs as a CLI, the ``dvc`` next to this interpreter (``make install`` puts it
in the project's ``.venv``, the ``dvc`` extra).
Credentials for an S3 remote come from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, read by
s3fs at push time) and are never written by this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from varreason.config import ExperimentConfig
from varreason.pipeline.stages import check_dvc_yaml, registry, tracked_profile

def dvc_executable() -> str | None:
    """``$VR_DVC``, else the ``dvc`` installed next to this interpreter, else ``dvc`` on PATH."""
    for cand in (os.environ.get("VR_DVC"), Path(sys.executable).parent / "dvc", shutil.which("dvc")):
        if cand and Path(cand).exists():
            return str(Path(cand).resolve())
    return None


def dvc(*args: str, cwd: str | Path = ".", check: bool = True) -> subprocess.CompletedProcess:
    """Run the DVC CLI with this interpreter's bin first on PATH, so stage ``cmd``s (``python -m ...``) run in the
    project's environment, not DVC's."""
    exe = dvc_executable()
    if exe is None:
        raise FileNotFoundError("dvc not found: run `make install` (installs it in .venv) or set VR_DVC")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()[-2000:]}")
    return res


def skip_reason(cfg: ExperimentConfig, params_path: str, overrides: dict | None) -> str | None:
    """Why this run cannot be recorded under dvc.yaml (its params are not what dvc.yaml tracks), or None."""
    if overrides:
        return "the run has --set overrides, which params.yaml (what dvc.yaml tracks) does not hold"
    if Path(params_path).resolve() != Path("params.yaml").resolve():
        return f"params file {params_path} is not the params.yaml dvc.yaml tracks"
    if not Path(".dvc").is_dir() or not Path("dvc.yaml").exists():
        return "no DVC project here (.dvc/ or dvc.yaml missing)"
    tracked = tracked_profile()
    if tracked != cfg.profile:
        return f"dvc.yaml tracks profile {tracked!r}, not {cfg.profile!r}"
    try:
        check_dvc_yaml(cfg)
    except ValueError as exc:
        return str(exc)
    if dvc_executable() is None:
        return "dvc is not installed (make install puts it in .venv)"
    return None


def lock_hashes(lock: str | Path = "dvc.lock") -> list[dict]:
    """(stage, out path, md5) of every out in ``dvc.lock``."""
    doc = yaml.safe_load(Path(lock).read_text()) or {}
    return [{"stage": name, "path": o["path"], "md5": o.get("md5", "")}
            for name, st in doc.get("stages", {}).items() for o in st.get("outs", [])]


@task(name="dvc-version", task_run_name="dvc-version-{cfg.profile}", cache_policy=NO_CACHE, persist_result=False,
      retries=0)
def version_run(cfg: ExperimentConfig, params_path: str, overrides: dict | None, commit: str) -> list[dict]:
    """Materialise, ``dvc commit``, ``dvc push``; publish the hashes. Returns [] when the run is not DVC's."""
    log = get_run_logger()
    why = skip_reason(cfg, params_path, overrides)
    if why:
        log.info(f"not versioned with DVC: {why}")
        return []
    from varreason.pipeline.run_stage import run

    stages = {s.name: s for s in registry(cfg)}
    for s in stages.values():
        run(s, cfg, stages)
    dvc("commit", "-f", "-q")
    remote = dvc("remote", "default", check=False).stdout.strip()
    pushed = remote and dvc("push", "-q", check=False)
    if pushed and pushed.returncode != 0:
        log.warning(f"dvc push to {remote!r} failed; the outs are committed locally: {pushed.stderr.strip()[-500:]}")
    rows = lock_hashes()
    table = "\n".join(f"| {r['stage']} | `{r['path']}` | `{r['md5']}` |" for r in rows)
    status = "pushed" if pushed and pushed.returncode == 0 else "not pushed"
    create_markdown_artifact(
        key=f"vr-em-{cfg.profile}-dvc".replace("_", "-").lower(),
        description=f"vr-em {cfg.profile}: DVC hashes of every stage output",
        markdown=(f"# DVC outputs: profile `{cfg.profile}`\n\ngit `{commit}`, params digest `{cfg.digest()}`, "
                  f"remote `{remote or 'none'}` ({status})\n\n`dvc pull` restores every path; `dvc repro` "
                  f"reproduces it.\n\n| stage | path | md5 |\n|---|---|---|\n{table}\n"))
    log.info(f"DVC: {len(rows)} outputs committed to dvc.lock, {status} (remote {remote or 'none'})")
    return rows


def configure_s3_remote(url: str, name: str = "s3", endpoint_url: str | None = None, default: bool = True,
                        cwd: str | Path = ".") -> None:
    """Add an S3 (or S3-compatible: MinIO, R2, Ceph via ``endpoint_url``) remote to ``.dvc/config.local`` only
    (git-ignored). No credentials are written: s3fs reads ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (or an
    AWS profile) from the environment of each ``dvc push``/``pull``."""
    dvc("remote", "add", "--local", "-f", *(["-d"] if default else []), name, url, cwd=cwd)
    if endpoint_url:
        dvc("remote", "modify", "--local", name, "endpointurl", endpoint_url, cwd=cwd)
