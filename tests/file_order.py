"""Test files longest first (tests/conftest.py applies it to every run).

`--dist loadfile` hands each worker whole files in collection order, so a slow file left to the end of the queue
sets the suite's tail (xdist's default reorder, by test count, put the one-test end-to-end files last; `make test`
turns it off with --no-loadscope-reorder). tests/file_durations.json holds measured seconds per file, written by
`make test PYTEST_ARGS=--file-durations=tests/file_durations.json`; a file not in it counts as 0 s. A module of
its own, not conftest: under xdist `import conftest` may give tests/deploy/conftest.py.
"""

import json
from pathlib import Path

DURATIONS = Path(__file__).with_name("file_durations.json")


def by_measured_duration(items, path: Path | None = None):
    path = path or DURATIONS
    secs = json.loads(path.read_text()) if path.exists() else {}
    items.sort(key=lambda item: -secs.get(item.nodeid.split("::")[0], 0.0))  # stable: file order kept within


class FileDurations:
    """The plugin behind --file-durations: each file's setup + call + teardown seconds, written at the end."""

    def __init__(self, path):
        self.path, self.secs = Path(path), {}

    def pytest_runtest_logreport(self, report):
        f = report.nodeid.split("::")[0]
        self.secs[f] = self.secs.get(f, 0.0) + report.duration

    def pytest_sessionfinish(self):
        ranked = dict(sorted(((f, round(s, 1)) for f, s in self.secs.items()), key=lambda kv: -kv[1]))
        self.path.write_text(json.dumps(ranked, indent=1) + "\n")
