"""Retry only transient failures; the cache key moves with the library code and the artifact store."""

from pathlib import Path

import pytest
from prefect.transactions import IsolationLevel

from tasks import caching


class _State:
    def __init__(self, exc):
        self.exc = exc

    def result(self):
        raise self.exc


@pytest.mark.parametrize("exc,transient", [
    (TimeoutError("sampling timed out"), True),
    (ConnectionError("lost worker"), True),
    (RuntimeError("NCCL error: unhandled system error"), True),
    (RuntimeError("CUDA out of memory"), False),
    (FloatingPointError("non-finite loss at step 3"), False),
    (ValueError("bad row"), False),
])
def test_is_transient(exc, transient):
    assert caching.is_transient(None, None, _State(exc)) is transient


def test_key_is_the_artifact_key_plus_the_store(tmp_path):
    """The Prefect cache key of a step is its artifact key (the same one io.produce files it under) plus the
    identity of the artifact store: another store, another key."""
    from varreason.config import load_config
    from varreason.steps import step_key

    params = Path(__file__).resolve().parents[2] / "params.yaml"
    a, b = (load_config(params, "smoke", {"artifacts_dir": str(tmp_path / x)}) for x in "ab")
    call = {"step": "build-task", "refs": {}, "ctx": {}}
    ka, kb = caching._step_key(None, {**call, "cfg": a}), caching._step_key(None, {**call, "cfg": b})
    assert ka != kb and ka == caching._step_key(None, {**call, "cfg": a})
    assert ka.startswith(step_key("build-task", a, {}, {}) + "-")
    c = load_config(params, "smoke", {"artifacts_dir": str(tmp_path / "a"), "data.n_train": 121})
    assert caching._step_key(None, {**call, "cfg": c}) != ka  # a value the step reads is part of the key


def test_every_step_task_uses_the_cache_policy():
    from tasks.steps import merge_shards, run_step, step_task
    from varreason.config import load_config
    from varreason.steps import STEPS

    cfg = load_config(Path(__file__).resolve().parents[2] / "params.yaml", "tiny")
    tasks = [step_task(cfg, name, name) for name in STEPS] + [run_step]
    for t in tasks:
        assert t.cache_policy is caching.CACHE, t.name
    for t in [*tasks, merge_shards]:
        assert t.retries == 2 and t.retry_condition_fn is caching.is_transient, t.name
        assert t.cache_policy.isolation_level == IsolationLevel.SERIALIZABLE, t.name
        assert t.cache_policy.lock_manager is caching.LOCKS, t.name
    assert merge_shards.cache_policy is caching.MERGE_CACHE
