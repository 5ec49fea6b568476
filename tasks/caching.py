"""Cache policy and retry rules shared by every task.

Cache key = the task's inputs (configs, ints, ``ArtifactRef``s whose ``sha`` is the content hash of each input
artifact) + the task's own source + a hash of the ``varreason`` library code + the identity of the artifact
store (so deleting ``artifacts/`` recomputes instead of returning refs to vanished files).

Isolation is SERIALIZABLE: a task run holds a lock on its cache key (``tasks.locking.FlockLockManager``,
shared by every process on the host that shares ``PREFECT_LOCAL_STORAGE_PATH``) from the cache lookup to the
result write, so two flow runs that reach the same step at once compute it once: the second waits, then
finds the first's result record and is ``Cached``. Steps with different keys never wait for each other.
"""

from __future__ import annotations

from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy
from prefect.tasks import exponential_backoff
from prefect.transactions import IsolationLevel

from tasks.locking import FlockLockManager
from varreason.io import code_fingerprint, store_id


def _code_and_store(ctx, params: dict) -> str:
    return f"{code_fingerprint()}-{store_id(params['root'])}" if "root" in params else code_fingerprint()


CODE = CachePolicy.from_cache_key_fn(_code_and_store)
LOCKS = FlockLockManager()
CACHE = (INPUTS + TASK_SOURCE + CODE).configure(isolation_level=IsolationLevel.SERIALIZABLE, lock_manager=LOCKS)

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


STEP = dict(cache_policy=CACHE, persist_result=True, retries=2, retry_condition_fn=is_transient,
            retry_delay_seconds=exponential_backoff(backoff_factor=5))
