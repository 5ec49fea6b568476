"""No traceback after success (issue 23): ``python -m flows.vr_em --profile tiny --seeds 3 4`` finished with rc
0 and then printed an ``ERROR sqlalchemy.pool ... CancelledError`` traceback while Prefect stopped its ephemeral
server. The cause: Prefect stops that server with SIGTERM right after the run, while its task-run recorder
still holds the last task-run events; the recorder's final flush is cancelled (the traceback) and those events
are lost. The CLI now starts the server itself (flows/server.py): its output goes to
``$PREFECT_HOME/ephemeral-server.log``, and at exit the CLI waits until the recorder has written every task
run's final state before the server is stopped.

A multi-seed smoke run (cut down to one EM round) must exit 0 with no traceback and no ERROR line in its
output, print the seed summary, and leave every task run of both seeds recorded as Completed in the server's
database.
"""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETS = ["em.rounds=1", "objective.estimators=[gml]", "baselines.rft=false", "data.n_train=40", "data.n_heldout=10",
        "data.n_seed_traces=30", "eval.max_new_tokens=32"]


@pytest.mark.slow
def test_a_successful_multi_seed_run_prints_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "home"), PREFECT_LOCAL_STORAGE_PATH=str(tmp_path / "storage"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
               OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    sets = [*SETS, f"artifacts_dir={tmp_path / 'artifacts'}", f"results_dir={tmp_path / 'results'}"]
    cmd = [sys.executable, "-m", "flows.vr_em", "--profile", "smoke", "--seeds", "0", "1",
           *(a for s in sets for a in ("--set", s))]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-4000:]
    for stream in (res.stdout, res.stderr):
        assert "Traceback" not in stream, stream[-6000:]
        assert not [line for line in stream.splitlines() if "| ERROR" in line or line.startswith("ERROR")], stream
    assert "seed" in res.stdout and (tmp_path / "results" / "seeds").exists(), res.stdout
    server_log = tmp_path / "home" / "ephemeral-server.log"
    assert server_log.exists() and f"ephemeral Prefect server on" not in server_log.read_text()
    assert "its log in" in res.stderr

    db = sqlite3.connect(tmp_path / "home" / "prefect.db")
    states = dict(db.execute("select state_type, count(*) from task_run group by state_type").fetchall())
    flows = db.execute("select count(*) from flow_run where state_type = 'COMPLETED'").fetchone()[0]
    db.close()
    assert flows >= 2 and set(states) == {"COMPLETED"} and states["COMPLETED"] > 20, (flows, states)
    print(f"task runs {states}, server log lines {len(server_log.read_text().splitlines())}")
