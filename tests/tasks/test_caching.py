"""Retry only transient failures; the cache key moves with the library code and the artifact store."""

from types import SimpleNamespace

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


def test_key_follows_code_and_store(tmp_path, monkeypatch):
    a = caching._code_and_store(None, {"root": str(tmp_path / "a")})
    b = caching._code_and_store(None, {"root": str(tmp_path / "b")})
    assert a != b and a == caching._code_and_store(None, {"root": str(tmp_path / "a")})
    monkeypatch.setattr(caching, "code_fingerprint", lambda: "changed")
    assert caching._code_and_store(None, {"root": str(tmp_path / "a")}) != a


def test_every_step_task_uses_the_cache_policy():
    from tasks import data, evaluation, sampling, sharding, training, weighting

    tasks = [getattr(m, n) for m in (data, sampling, sharding, training, weighting) for n in dir(m)
             if hasattr(getattr(m, n), "cache_policy") and getattr(m, n).__module__ == m.__name__]
    tasks.append(evaluation.evaluate)
    assert len(tasks) >= 11
    for t in tasks:
        assert t.cache_policy is caching.CACHE, t.name
        assert t.retries == 2 and t.retry_condition_fn is caching.is_transient, t.name
        assert t.cache_policy.isolation_level == IsolationLevel.SERIALIZABLE, t.name
        assert t.cache_policy.lock_manager is caching.LOCKS, t.name
    assert SimpleNamespace  # keep import used
