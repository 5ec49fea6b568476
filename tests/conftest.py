import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matmuls: intra-op threads only add contention (and seconds) on a busy 2-core machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SLOW_TIMEOUT_S = 1800  # pyproject's `timeout` (600 s) is for the rest; a slow test may set its own mark


def pytest_collection_modifyitems(items):
    _by_measured_duration(items)
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


# Longest files first. `--dist loadfile` hands each worker whole files in collection order, so a slow file left to
# the end of the queue sets the suite's tail (xdist's default reorder, by test count, put the one-test end-to-end
# files last; `make test` turns it off with --no-loadscope-reorder). tests/file_durations.json holds measured
# seconds per file, written by `make test PYTEST_ARGS=--file-durations=tests/file_durations.json`; a file not in
# it counts as 0 s.
DURATIONS = Path(__file__).with_name("file_durations.json")


def pytest_addoption(parser):
    parser.addoption("--file-durations", metavar="PATH", default=None,
                     help="write each test file's total seconds (setup + call + teardown) to PATH as JSON")


def _by_measured_duration(items):
    secs = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    items.sort(key=lambda item: -secs.get(item.nodeid.split("::")[0], 0.0))  # stable: file order kept within


def pytest_configure(config):
    if config.getoption("--file-durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_FileDurations(config.getoption("--file-durations")), "file-durations")


class _FileDurations:
    def __init__(self, path):
        self.path, self.secs = Path(path), {}

    def pytest_runtest_logreport(self, report):
        f = report.nodeid.split("::")[0]
        self.secs[f] = self.secs.get(f, 0.0) + report.duration

    def pytest_sessionfinish(self):
        ranked = dict(sorted(((f, round(s, 1)) for f, s in self.secs.items()), key=lambda kv: -kv[1]))
        self.path.write_text(json.dumps(ranked, indent=1) + "\n")
