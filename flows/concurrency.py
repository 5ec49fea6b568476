"""Run independent pieces of a flow at once, in threads of the flow run: each thread keeps the flow's Prefect
context (a copy of its context variables), so the tasks and subflows it calls belong to the same parent run.

Subflows are called directly, never wrapped in a task: the tasks of a subflow called inside a task would nest their
cache transactions in that task's, and Prefect commits a nested transaction (and releases its cache lock) only
when the outermost one commits; a second step of the same key later in the subflow (the Acc and GML chains share
round 1's traces) would then wait for a lock its own run holds, for ever.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def at_once(calls: list[Callable[[], Any]], max_workers: int | None = None) -> list[Any]:
    """Run ``calls`` in up to ``max_workers`` threads (all at once by default); return their results in order.
    The first failure is raised once every call has stopped."""
    if not calls:
        return []
    with ThreadPoolExecutor(max_workers=max_workers or len(calls)) as pool:
        futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
    return [f.result() for f in futures]
