import os

import pytest
from file_order import FileDurations, by_measured_duration

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
    by_measured_duration(items)
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


def pytest_addoption(parser):
    parser.addoption("--file-durations", metavar="PATH", default=None,
                     help="write each test file's total seconds (setup + call + teardown) to PATH as JSON")


def pytest_configure(config):
    if config.getoption("--file-durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(FileDurations(config.getoption("--file-durations")), "file-durations")
