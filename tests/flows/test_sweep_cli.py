"""``python -m flows.vr_sweep``: the grid is checked before anything starts, then the sweep owns its processes
exactly as ``python -m flows.vr_em`` does (``flows.cli.start_services``: the reaper and the owned ephemeral
server; tests/reliability/test_orphans.py kills that CLI with SIGKILL and finds no process left)."""

import pytest

import flows.cli as cli
from flows import sweep_cli


class Started(Exception):
    """Stands in for the sweep: raised where the services start, so no flow runs."""


def _record(calls: list):
    def start() -> None:
        calls.append("start_services")
        raise Started

    return start


def test_a_valid_grid_starts_the_run_clis_services(monkeypatch):
    calls: list = []
    monkeypatch.setattr(cli, "start_services", _record(calls))
    with pytest.raises(Started):
        sweep_cli.main(["--arms", "main", "--seeds", "0", "--profile", "smoke"])
    assert calls == ["start_services"]


def test_a_bad_grid_stops_before_any_service(monkeypatch, capsys):
    calls: list = []
    monkeypatch.setattr(cli, "start_services", _record(calls))
    assert sweep_cli.main(["--grid", "science/grid.yaml", "--arms", "no-such-arm"]) == 2
    assert calls == []
    assert capsys.readouterr().err.startswith("error: ")


def test_procs_splits_the_seeds_over_processes_on_one_server_then_summarises(monkeypatch):
    """--procs 2: one `vr-sweep` child per part of the seeds (a seed's arms together), each told this process's
    server; when both exit 0 the whole selection runs here once more (cache hits) for the one summary."""
    import subprocess

    import flows.vr_sweep as vr_sweep_mod

    started, summary = [], []

    class Child:
        def __init__(self, argv, env):
            started.append((argv, env["PREFECT_API_URL"]))

        def wait(self):
            return 0

    monkeypatch.setattr(cli, "start_services", lambda: "http://127.0.0.1:1/api")
    monkeypatch.setattr(subprocess, "Popen", Child)
    monkeypatch.setattr(vr_sweep_mod, "vr_sweep", lambda **kw: summary.append(kw))
    assert sweep_cli.main(["--arms", "main", "--seeds", "0", "1", "2", "--profile", "smoke", "--procs", "2"]) == 0
    parts = [argv[argv.index("--seeds") + 1:argv.index("--out-dir")] for argv, _ in started]
    assert parts == [["0", "2"], ["1"]] and {api for _, api in started} == {"http://127.0.0.1:1/api"}
    assert all(argv[argv.index("--arms") + 1] == "main" and "--procs" not in argv for argv, _ in started)
    assert summary and summary[0]["seeds"] == [0, 1, 2]


def test_a_failed_part_fails_the_sweep_without_a_summary(monkeypatch, capsys):
    import subprocess

    import flows.vr_sweep as vr_sweep_mod

    class Child:
        codes = iter([0, 3])

        def __init__(self, argv, env):
            self.rc = next(self.codes)

        def wait(self):
            return self.rc

    monkeypatch.setattr(cli, "start_services", lambda: "http://127.0.0.1:1/api")
    monkeypatch.setattr(subprocess, "Popen", Child)
    monkeypatch.setattr(vr_sweep_mod, "vr_sweep", lambda **kw: pytest.fail("no summary after a failed part"))
    assert sweep_cli.main(["--arms", "main", "--seeds", "0", "1", "--profile", "smoke", "--procs", "2"]) == 1
    assert "part 2 (seeds [1]) exited 3" in capsys.readouterr().err
