"""tests/file_order.py (applied by tests/conftest.py) orders test files longest first by
tests/file_durations.json (with `--dist loadfile`, the order xdist hands files to workers)."""

import json
from types import SimpleNamespace

from file_order import by_measured_duration


def test_files_run_longest_first_and_keep_their_order_within(tmp_path):
    path = tmp_path / "durations.json"
    path.write_text(json.dumps({"tests/b.py": 10.0, "tests/c.py": 300.0}))
    ids = ["tests/a.py::x", "tests/b.py::x", "tests/b.py::y", "tests/c.py::x", "tests/a.py::y"]
    items = [SimpleNamespace(nodeid=i) for i in ids]
    by_measured_duration(items, path)
    assert [i.nodeid for i in items] == ["tests/c.py::x", "tests/b.py::x", "tests/b.py::y", "tests/a.py::x",
                                         "tests/a.py::y"]  # a.py is not measured: 0 s, last

