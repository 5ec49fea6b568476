"""FlockLockManager: one holder per key across processes; a dead holder's lock is free at once."""

import multiprocessing as mp
import os
import signal
import time

from tasks.locking import FlockLockManager


def _hold(lock_dir, key, ready, release):
    locks = FlockLockManager(lock_dir)
    assert locks.acquire_lock(key, "child")
    ready.set()
    release.wait(30)
    locks.release_lock(key, "child")


def _hold_forever(lock_dir, key, ready):
    FlockLockManager(lock_dir).acquire_lock(key, "child")
    ready.set()
    time.sleep(60)


def test_one_holder_across_processes(tmp_path):
    ctx = mp.get_context("spawn")  # a clean child: a fork inherits the in-process Prefect state of earlier tests
    ready, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold, args=(tmp_path, "k", ready, release))
    child.start()
    assert ready.wait(30)
    locks = FlockLockManager(tmp_path, poll_s=0.02)
    assert locks.is_locked("k") and not locks.is_locked("other")
    assert not locks.acquire_lock("k", "parent", acquire_timeout=0.2)  # held by the child
    assert locks.acquire_lock("other", "parent", acquire_timeout=0)  # other keys are independent
    assert not locks.wait_for_lock("k", timeout=0.1)
    release.set()
    assert locks.wait_for_lock("k", timeout=10)
    assert locks.acquire_lock("k", "parent", acquire_timeout=10)
    assert locks.is_lock_holder("k", "parent") and not locks.is_lock_holder("k", "someone")
    assert locks.acquire_lock("k", "parent", acquire_timeout=0)  # re-entrant for its holder
    locks.release_lock("k", "parent")
    assert not locks.is_locked("k")
    child.join(10)
    assert child.exitcode == 0


def test_killed_holder_releases(tmp_path):
    ctx = mp.get_context("spawn")  # a clean child: a fork inherits the in-process Prefect state of earlier tests
    ready = ctx.Event()
    child = ctx.Process(target=_hold_forever, args=(tmp_path, "k", ready))
    child.start()
    assert ready.wait(30)
    locks = FlockLockManager(tmp_path, poll_s=0.02)
    assert locks.is_locked("k")
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert locks.acquire_lock("k", "parent", acquire_timeout=5)  # no stale lock file to expire
    locks.release_lock("k", "parent")


def test_threads_of_one_process_exclude_each_other(tmp_path):
    locks = FlockLockManager(tmp_path)
    assert locks.acquire_lock("k", "a")
    import threading

    got = []
    t = threading.Thread(target=lambda: got.append(locks.acquire_lock("k", "b", acquire_timeout=0.2)))
    t.start()
    t.join()
    assert got == [False]
    locks.release_lock("k", "a")


def test_default_dir_follows_prefect_storage(tmp_path, monkeypatch):
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: str(tmp_path / "store")}):
        assert FlockLockManager().lock_dir() == tmp_path / "store" / ".locks"


def test_pickled_copy_holds_nothing_and_shares_the_locks(tmp_path):
    import pickle

    locks = FlockLockManager(tmp_path, poll_s=0.02)
    assert locks.acquire_lock("k", "parent", acquire_timeout=0)
    copy = pickle.loads(pickle.dumps(locks))  # what a Ray worker gets with a task's cache policy
    assert copy.lock_dir() == tmp_path and not copy.is_lock_holder("k", "parent")
    assert copy.is_locked("k") and not copy.acquire_lock("k", "other", acquire_timeout=0.1)
    locks.release_lock("k", "parent")
    assert copy.acquire_lock("k", "other", acquire_timeout=0)
    copy.release_lock("k", "other")
