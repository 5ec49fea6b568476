"""Check, before anything runs, that this machine can run a profile; fail with one line saying what to fix.

``check(cfg)`` looks only at what the profile asks for:

* ``sampling.backend: vllm`` needs the ``vllm`` package (the ``gpu`` extra) and CUDA (``torch.cuda``), with at
  least ``sampling.tensor_parallel_size`` visible GPUs;
* ``model.kind: pretrained`` (and ``data.dataset``) given as a hub id needs the files: a local directory, the
  Hugging Face cache, or hub access (not possible with ``HF_HUB_OFFLINE=1``).

It raises :class:`PreflightError` (a ``ConfigError``) whose message is a single line listing every missing
piece, so ``vr-em/qwen3`` on a CPU box stops in seconds instead of hanging in a model download or a vLLM start.
``check_data(cfg)`` reads a Bespoke dataset the way the task build will and raises ``DataError`` on a malformed
row; the CLI runs both before it imports Prefect. A path-like ``data.dataset``/``model.name_or_path`` that does
not exist is reported as a missing path, not as a hub id.
No prefect import here: the Prefect task wrapper is ``tasks/preflight.py``.
"""

from __future__ import annotations

import importlib.util
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from varreason.config import ConfigError, ExperimentConfig


class PreflightError(ConfigError):
    """This machine cannot run the profile; the message names what is missing and how to fix it."""


def _module_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _in_hf_cache(repo_id: str, repo_type: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    probe = "config.json" if repo_type == "model" else "README.md"
    try:
        return isinstance(try_to_load_from_cache(repo_id, probe, repo_type=repo_type), str)
    except Exception:  # noqa: BLE001 - a malformed id or cache simply means "not cached"
        return False


def _hub_reachable(repo_id: str, repo_type: str, timeout: float = 5.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = f"{endpoint}/api/{repo_type}s/{repo_id}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as resp:
            return resp.status < 400
    except urllib.error.HTTPError as exc:
        return exc.code in (401, 403)  # reachable; gated repos are an auth problem the loader reports itself
    except (OSError, ValueError):
        return False


def _looks_like_path(ref: str) -> bool:
    return ref.startswith((".", "/", "~")) or ref.endswith((".jsonl", ".json", ".parquet")) or ref.count("/") > 1


def _hub_problem(what: str, ref: str, repo_type: str, reachable: Callable[[str, str], bool]) -> str | None:
    if Path(ref).expanduser().exists() or _in_hf_cache(ref, repo_type):
        return None
    if _looks_like_path(ref):  # a hub id is "owner/name"; this is a path, and it is missing
        return f"{what} {ref!r} does not exist (fix the path, or give a hub id such as owner/name)"
    if _hub_offline():
        return (f"{what} {ref!r} is not a local path nor in the Hugging Face cache and HF_HUB_OFFLINE=1 "
                f"(download it with `huggingface-cli download {ref}{' --repo-type dataset' if repo_type == 'dataset' else ''}` "
                f"on a machine with hub access, or set {what} to a local directory)")
    if not reachable(ref, repo_type):
        return (f"{what} {ref!r} is not a local path nor cached and the hub is unreachable "
                f"(give network access to huggingface.co or set {what} to a local directory)")
    return None


def problems(cfg: ExperimentConfig, *, module_available: Callable[[str], bool] = _module_available,
             cuda_devices: Callable[[], int] = _cuda_devices,
             hub_reachable: Callable[[str, str], bool] = _hub_reachable) -> list[str]:
    """Everything ``cfg`` needs that this machine lacks, one phrase each (empty: good to go)."""
    out = []
    if cfg.sampling.backend == "vllm":
        if not module_available("vllm"):
            out.append("sampling.backend 'vllm' needs the vllm package (pip install -e '.[gpu]' on a CUDA host)")
        n = cuda_devices()
        need = cfg.sampling.tensor_parallel_size
        if n == 0:
            out.append("sampling.backend 'vllm' needs CUDA but torch.cuda.is_available() is False (run on a GPU "
                       "worker, i.e. the vr-gpu or vr-gpu-k8s work pool, or use sampling.backend=hf)")
        elif n < need:
            out.append(f"sampling.tensor_parallel_size={need} needs {need} GPUs but {n} are visible "
                       f"(lower sampling.tensor_parallel_size or request {need} GPUs)")
    if cfg.model.kind == "pretrained" and cfg.model.name_or_path:
        p = _hub_problem("model.name_or_path", cfg.model.name_or_path, "model", hub_reachable)
        if p:
            out.append(p)
    if cfg.data.dataset:
        p = _hub_problem("data.dataset", cfg.data.dataset, "dataset", hub_reachable)
        if p:
            out.append(p)
    return out


def check(cfg: ExperimentConfig, **probes) -> None:
    """Raise :class:`PreflightError` (one line) if this machine cannot run ``cfg``; return None otherwise."""
    found = problems(cfg, **probes)
    if found:
        raise PreflightError(f"profile {cfg.profile!r} cannot run on this machine: " + "; ".join(found))


def check_data(cfg: ExperimentConfig) -> None:
    """Read and validate the profile's dataset (Bespoke rows) the way the task build will; raise
    :class:`~varreason.config.DataError` (one line: file, line, field, fix) on a malformed row. The embedded
    arithmetic task has no input file: its bounds are checked by the config itself."""
    if cfg.data.task == "bespoke":
        from varreason import bespoke

        d = cfg.data
        bespoke.questions(bespoke.load_rows(d.dataset), d.n_train, d.n_heldout, d.n_seed_traces, cfg.seed)
