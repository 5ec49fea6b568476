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
