"""A cross-process lock manager for Prefect's SERIALIZABLE cache isolation, on ``flock(2)``.

Why not Prefect's ``FileSystemLockManager``: it claims a lock by creating an empty file and then writes the
holder into it; a second process that reads the file in between fails parsing the empty JSON, and a crashed
holder's file stays "locked" for ever unless a hold timeout is given. Here a lock is an exclusive ``flock`` on
``<dir>/<key>.lock``: the kernel arbitrates between processes (and between threads, which open their own file
descriptions), and it drops the lock when the holding process dies, so a killed flow run never wedges the
next one. Lock files are never unlinked: unlinking a file that another process is about to ``flock`` would
let two processes hold "the same" lock on two different inodes.

The directory is resolved at use time from Prefect's ``PREFECT_LOCAL_STORAGE_PATH`` (``<path>/.locks``), the
place the result records live, so every process that shares result records shares the locks. ``flock`` is
local to one host (and unreliable over NFS): runs on several machines need a shared lock service instead.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import anyio.to_thread
from prefect.locking.protocol import LockManager
from prefect.settings import get_current_settings


class FlockLockManager(LockManager):
    """``LockManager`` whose locks are ``flock``s; ``hold_timeout`` is not needed (a dead holder releases)."""

    def __init__(self, lock_dir: str | Path | None = None, poll_s: float = 0.1) -> None:
        self._lock_dir = Path(lock_dir) if lock_dir is not None else None
        self._poll_s = poll_s
        self._held: dict[str, tuple[str, int]] = {}  # key -> (holder, fd) for locks this process holds
        self._mutex = threading.Lock()

    def __getstate__(self) -> dict:
        # Held locks are this process's open fds and its mutex: a copy sent to another process (a Ray worker
        # unpickles the task and with it its cache policy) starts holding nothing, with a mutex of its own.
        return {"_lock_dir": self._lock_dir, "_poll_s": self._poll_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["_lock_dir"], state["_poll_s"])

    def lock_dir(self) -> Path:
        return self._lock_dir or Path(get_current_settings().results.local_storage_path) / ".locks"

    def _path(self, key: str) -> Path:
        return self.lock_dir() / f"{key.replace(os.sep, '_')}.lock"

    def _open(self, key: str) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        with self._mutex:
            if key in self._held and self._held[key][0] == holder:
                return True  # re-entrant for its holder, as Prefect's own managers are
        fd = self._open(key)
        try:
            if acquire_timeout is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            elif not self._try_until(fd, acquire_timeout):
                os.close(fd)
                return False
        except BaseException:
            os.close(fd)
            raise
        with self._mutex:
            self._held[key] = (holder, fd)
        return True

    def _try_until(self, fd: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(self._poll_s)

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:
        return await anyio.to_thread.run_sync(self.acquire_lock, key, holder, acquire_timeout, hold_timeout)

    def release_lock(self, key: str, holder: str) -> None:
        with self._mutex:
            held = self._held.get(key)
            if held is None or held[0] != holder:
                raise ValueError(f"No lock held by {holder} for transaction with key {key}")
            del self._held[key]
        fcntl.flock(held[1], fcntl.LOCK_UN)
        os.close(held[1])

    def is_locked(self, key: str) -> bool:
        if key in self._held:
            return True
        fd = self._open(key)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: we got it; give it straight back
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def is_lock_holder(self, key: str, holder: str) -> bool:
        held = self._held.get(key)
        return held is not None and held[0] == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Block until nobody holds ``key`` (without taking it); False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self._poll_s)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return await anyio.to_thread.run_sync(self.wait_for_lock, key, timeout)
