"""produce() under concurrency: two processes building the same key at once both succeed with the winner's
artifact; the loser's copy is discarded and no partial or temporary directory is left."""

import multiprocessing as mp
import time
from pathlib import Path

from varreason.io import _DONE, ArtifactRef, _discard_stale, hash_dir, produce


def _racer(root, index, barrier, out):
    def build(tmp: Path) -> None:
        (tmp / "who.txt").write_text(f"builder {index}")  # different bytes per builder: whose copy won shows
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x.bin").write_bytes(bytes(range(256)) * 64)
        barrier.wait(timeout=30)  # both are inside build(): each passed the "already built?" check
        time.sleep(0.3 * index)  # builder 0 renames first
    ref = produce(root, "step", {"cfg": 1}, build)
    out.put((index, ref.model_dump()))


def test_two_processes_building_one_key(tmp_path):
    ctx = mp.get_context("spawn")  # a clean child: a fork inherits the in-process Prefect state of earlier tests
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(str(tmp_path), i, barrier, out)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]  # the loser raised nothing
    refs = dict(out.get(timeout=5) for _ in procs)
    assert refs[0] == refs[1]  # the loser returns the winner's ref
    ref = ArtifactRef(**refs[0])
    path = ref.verify()
    assert (path / "who.txt").read_text() == "builder 0"  # the first rename won and was not overwritten
    assert hash_dir(path) == ref.sha
    assert sorted(p.name for p in (tmp_path / "step").iterdir()) == [path.name]  # no .tmp-* left behind


def test_discard_stale_puts_a_complete_dir_back(tmp_path):
    """A producer that found a marker-less dir moves it aside; if a concurrent producer's complete dir was
    published there in the meantime, it is what got moved, and it is put back, not deleted."""
    final = tmp_path / "step" / "key"
    final.mkdir(parents=True)
    (final / "a.txt").write_text("complete")
    (final / _DONE).write_text(hash_dir(final))
    _discard_stale(final)
    assert (final / "a.txt").read_text() == "complete"
    (final / _DONE).unlink()
    _discard_stale(final)
    assert list((tmp_path / "step").iterdir()) == []
