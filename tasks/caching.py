"""Cache policy and retry rules shared by every step task.

Cache key = the step's artifact key (``varreason.steps.step_key``: the config values its table row declares, its
run-position values, its inputs' content hashes, the AST fingerprint of the code it imports, its data files and
package versions) + the identity of the artifact store (so deleting ``artifacts/`` recomputes instead of
returning refs to vanished files). It is the key ``varreason.io.produce`` files the artifact under, so a Prefect
cache hit and an artifact-store hit are the same event. The wrapper's own source is not in the key: it only
forwards to the library.

Isolation is SERIALIZABLE: a task run holds a lock on its cache key (``tasks.locking.FlockLockManager``,
shared by every process on the host that shares ``PREFECT_LOCAL_STORAGE_PATH``) from the cache lookup to the
result write, so two flow runs that reach the same step at once compute it once: the second waits, then
finds the first's result record and is ``Cached``. Steps with different keys never wait for each other.
"""

from __future__ import annotations

from prefect.cache_policies import CachePolicy
from prefect.tasks import exponential_backoff
from prefect.transactions import IsolationLevel

from tasks.locking import FlockLockManager
from varreason.io import store_id
from varreason.steps import step_key


def _step_key(ctx, params: dict) -> str:
    c = params["cfg"]
    return f"{step_key(params['step'], c, params['refs'], params['ctx'])}-{store_id(c.artifacts_dir)}"


def _merge_key(ctx, params: dict) -> str:
    from varreason.io import hash_json
    from varreason.steps import merge_key_parts

    return f"merge-{hash_json(merge_key_parts(params['parts']))}-{store_id(params['root'])}"


LOCKS = FlockLockManager()
CACHE = CachePolicy.from_cache_key_fn(_step_key).configure(isolation_level=IsolationLevel.SERIALIZABLE,
                                                            lock_manager=LOCKS)
MERGE_CACHE = CachePolicy.from_cache_key_fn(_merge_key).configure(isolation_level=IsolationLevel.SERIALIZABLE,
                                                                   lock_manager=LOCKS)

_TRANSIENT_TYPES = (TimeoutError, ConnectionError, BrokenPipeError)
_TRANSIENT_TEXT = ("NCCL", "ECONNRESET", "engine is not ready", "preempt", "Connection reset")


def is_transient(task, task_run, state) -> bool:
    """Retry timeouts, lost connections, NCCL hiccups and preemption; never OOM, NaN loss, bad data or config."""
    try:
        state.result()
    except _TRANSIENT_TYPES:
        return True
    except Exception as exc:  # noqa: BLE001 - classify, do not swallow: Prefect re-raises when we return False
        return any(t in str(exc) for t in _TRANSIENT_TEXT)
    return False


RETRY = dict(persist_result=True, retries=2, retry_condition_fn=is_transient,
             retry_delay_seconds=exponential_backoff(backoff_factor=5))
STEP = dict(cache_policy=CACHE, **RETRY)
