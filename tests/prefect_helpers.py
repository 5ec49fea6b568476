"""What the tests that read a finished run back from the Prefect API share."""

from __future__ import annotations

import asyncio
import time

from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId


async def final_task_runs(client, flow_run_ids, timeout: float = 120.0) -> list:
    """Every task run of the flow runs ``flow_run_ids``, once all their states are final (names included).

    Prefect 3 persists task-run states from events, asynchronously: a flow run can read Completed (or Failed)
    while its last task runs still read Running or Pending. This polls for at most ``timeout`` s and then returns
    what the server has, so a test's own assertion names what is not final."""
    deadline = time.monotonic() + timeout
    flt = FlowRunFilter(id=FlowRunFilterId(any_=list(flow_run_ids)))
    while True:
        runs = await client.read_task_runs(flow_run_filter=flt)
        if all(r.state is not None and r.state.is_final() for r in runs) or time.monotonic() > deadline:
            return runs
        await asyncio.sleep(0.5)


def state_names(runs) -> dict[str, str]:
    """{task run name: its state's name} ("None" for a run without a state)."""
    return {r.name: r.state.name if r.state else "None" for r in runs}
