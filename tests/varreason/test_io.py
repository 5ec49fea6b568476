"""Unit tests for varreason/io.py (content-addressed artifacts, atomic writes)."""

from pathlib import Path

import json
import pytest

from varreason.io import ArtifactError, ArtifactRef, hash_dir, produce, store_id, write_atomic


def _counting_build(content="hello"):
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "data.txt").write_text(content)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x.bin").write_bytes(b"\x00\x01")

    return build, calls


def test_produce_builds_once_and_reuses(tmp_path):
    build, calls = _counting_build()
    a = produce(tmp_path, "step", {"cfg": 1}, build)
    b = produce(tmp_path, "step", {"cfg": 1}, build)
    assert len(calls) == 1
    assert a == b
    p = a.verify()
    assert (p / ".complete").read_text().strip() == a.sha
    assert a.sha == hash_dir(p)
    assert (p / "data.txt").read_text() == "hello"
    assert Path(a.path).parent == tmp_path / "step"
    assert not list((tmp_path / "step").glob(".tmp-*"))


def test_produce_different_key_builds_again(tmp_path):
    build, calls = _counting_build()
    a = produce(tmp_path, "step", {"cfg": 1}, build)
    b = produce(tmp_path, "step", {"cfg": 2}, build)
    assert len(calls) == 2
    assert a.path != b.path
    assert a.sha == b.sha  # same content


def test_produce_failed_build_leaves_nothing(tmp_path):
    def bad(tmp: Path) -> None:
        (tmp / "partial.txt").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        produce(tmp_path, "step", {"cfg": 1}, bad)
    step_dir = tmp_path / "step"
    leftovers = list(step_dir.iterdir()) if step_dir.exists() else []
    assert leftovers == []
    # a later good build of the same key works
    build, calls = _counting_build()
    ref = produce(tmp_path, "step", {"cfg": 1}, build)
    assert len(calls) == 1 and ref.verify().exists()


def test_produce_rebuilds_unmarked_directory(tmp_path):
    build, calls = _counting_build("v1")
    ref = produce(tmp_path, "step", {"cfg": 1}, build)
    (Path(ref.path) / ".complete").unlink()  # as if a crash hit between rename and marker
    (Path(ref.path) / "junk").write_text("junk")
    ref2 = produce(tmp_path, "step", {"cfg": 1}, build)
    assert len(calls) == 2
    assert not (Path(ref2.path) / "junk").exists()
    assert ref2.sha == ref.sha


def test_verify_errors(tmp_path):
    build, _ = _counting_build()
    ref = produce(tmp_path, "step", {"cfg": 1}, build)
    with pytest.raises(ArtifactError):
        ArtifactRef(path=ref.path, sha="0" * 16).verify()
    with pytest.raises(ArtifactError):
        ArtifactRef(path=str(tmp_path / "nope"), sha=ref.sha).verify()
    (Path(ref.path) / ".complete").write_text("deadbeefdeadbeef")  # marker rewritten by someone else
    with pytest.raises(ArtifactError):
        ref.verify()


def test_artifact_ref_truediv(tmp_path):
    ref = ArtifactRef(path=str(tmp_path), sha="x")
    assert ref / "a.txt" == tmp_path / "a.txt"


def test_hash_dir_sensitive_to_content_and_names(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("one")
    h1 = hash_dir(d)
    assert hash_dir(d) == h1
    (d / ".complete").write_text("whatever")  # the marker is excluded
    assert hash_dir(d) == h1
    (d / "a.txt").write_text("two")
    h2 = hash_dir(d)
    assert h2 != h1
    (d / "a.txt").rename(d / "b.txt")
    assert hash_dir(d) != h2
    (d / "b.txt").write_text("one")
    (d / "b.txt").rename(d / "a.txt")
    assert hash_dir(d) == h1


def test_write_atomic(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    write_atomic(target, "abc")
    assert target.read_text() == "abc"
    write_atomic(target, b"\x00xyz")
    assert target.read_bytes() == b"\x00xyz"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_store_id(tmp_path):
    r1, r2 = tmp_path / "s1", tmp_path / "s2"
    a = store_id(r1)
    assert store_id(r1) == a
    assert (r1 / ".store-id").read_text().strip() == a
    b = store_id(r2)
    assert a != b and len(a) == 32


def test_hash_dir_leaves_out_the_wall_clock_of_stats(tmp_path):
    """A rebuild with the same data has the same hash (so what it feeds stays cached); any other stat counts."""
    d = tmp_path / "d"
    d.mkdir()
    stats = {"n": 3, "wall_s": 1.5, "tokens_per_s": 10.0, "seconds": 1.4, "shards": [{"wall_s": 0.7}]}
    (d / "stats.json").write_text(json.dumps(stats))
    h = hash_dir(d)
    (d / "stats.json").write_text(json.dumps({**stats, "wall_s": 9.0, "tokens_per_s": 2.0, "seconds": 8.8,
                                              "shards": [{"wall_s": 4.0}]}))
    assert hash_dir(d) == h
    (d / "stats.json").write_text(json.dumps({**stats, "n": 4}))
    assert hash_dir(d) != h
    (d / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "sample_wall_s": 3.0}))
    h = hash_dir(d)
    (d / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "sample_wall_s": 4.0}))
    assert hash_dir(d) == h
    (d / "metrics.json").write_text(json.dumps({"accuracy": 0.25, "sample_wall_s": 4.0}))
    assert hash_dir(d) != h
