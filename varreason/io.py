"""Content-addressed artifacts with atomic writes.

Every step writes one directory, ``<root>/<step>/<key>``, where ``key`` hashes the step's inputs (the config
values it reads, the content hashes of its input artifacts) and its code fingerprint (``varreason.steps``); the
parts of the key are kept beside the files in ``.key.json`` (not part of the content hash), so ``--status`` can
say which part changed. The directory is built under a
temporary name and renamed into place, so a crash never leaves a half-written artifact at a real path, and a
finished directory is reused as is. What a killed builder leaves (its ``.tmp-<key>-*`` dir, a ``write_atomic``
temp file) is removed by the next writer of the same key or file once no live process owns it. An
:class:`ArtifactRef` names a directory and its content hash; steps
``verify()`` their inputs so a stale or overwritten artifact fails loudly instead of feeding wrong data on.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from varreason.config import ConfigError
from varreason.faults import building, fault_point

_DONE = ".complete"
_KEY = ".key.json"
_META = (_DONE, _KEY)  # bookkeeping files, not part of an artifact's content hash


class ArtifactError(RuntimeError):
    """An input artifact is missing or its content changed since it was produced."""


def hash_json(obj: Any) -> str:
    """sha256 of the canonical JSON form of ``obj`` (sorted keys), 16 hex chars."""
    blob = json.dumps(obj, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot hash {type(obj).__name__}")


_STATS_FILES = ("stats.json", "metrics.json")


def _timing(key: str) -> bool:
    """A wall-clock field of a stats file (``wall_s``, ``sample_wall_s``, ``seconds``, ``tokens_per_s``)."""
    return "wall_s" in key or "seconds" in key or key.endswith("_per_s")


def _without_timing(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_timing(v) for k, v in obj.items() if not _timing(k)}
    if isinstance(obj, list):
        return [_without_timing(v) for v in obj]
    return obj


def hash_dir(path: Path) -> str:
    """Content hash of a directory: relative paths and bytes of every file (marker and key files excluded), with
    the wall-clock fields of its ``stats.json``/``metrics.json`` left out, so a rebuild that produces the same
    data has the same hash and the steps downstream of it stay cached."""
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.name not in _META):
        h.update(str(file.relative_to(path)).encode())
        h.update(b"\0")
        if file.name in _STATS_FILES and file.parent == path:
            h.update(json.dumps(_without_timing(json.loads(file.read_bytes())), sort_keys=True).encode())
            continue
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


class ArtifactRef(BaseModel):
    """A finished artifact directory and the content hash it had when written."""

    model_config = ConfigDict(frozen=True)
    path: str
    sha: str

    def verify(self) -> Path:
        p = Path(self.path)
        if not (p / _DONE).exists():
            raise ArtifactError(f"artifact {p} is missing or incomplete; re-run the step that produces it")
        marker = (p / _DONE).read_text().strip()
        if marker != self.sha:
            raise ArtifactError(f"artifact {p} changed since it was written (sha {marker} != {self.sha}); "
                                "re-run the producing step")
        return p

    def __truediv__(self, name: str) -> Path:
        return Path(self.path) / name


def store_id(root: str | Path) -> str:
    """Identity of an artifact store, created with it. Orchestrators fold it into their cache keys, so deleting
    the store invalidates every cached result that points into it instead of handing out dangling refs."""
    path = Path(root) / ".store-id"
    _store_dir(Path(root))
    if not path.exists():
        write_atomic(path, uuid.uuid4().hex)
    return path.read_text().strip()


def artifact_key(step: str, key_parts: dict[str, Any]) -> str:
    """Key of an artifact of directory ``step``: a hash of everything its content depends on (``key_parts``)."""
    return hash_json({"out": step, **key_parts})


def read_key(path: str | Path) -> dict | None:
    """The ``.key.json`` of an artifact directory (``label`` and key ``parts``), None if absent or unreadable."""
    try:
        return json.loads((Path(path) / _KEY).read_text())
    except (OSError, ValueError):
        return None


def produce(root: str | Path, step: str, key_parts: dict[str, Any], build: Callable[[Path], None],
            label: str = "") -> ArtifactRef:
    """Return the artifact for ``(step, key_parts)``, building it with ``build(tmp_dir)`` if absent.

    ``build`` writes files into a fresh temporary directory, which gets its ``.complete`` marker and is then
    renamed into ``<root>/<step>/<key>`` in one step, so a directory at the real path is always complete.
    Two concurrent producers of the same key both build; the first rename wins and the other discards its copy
    and returns the winner's ref (no exception, no partial dir). Orchestrators that want each key built once
    serialise producers themselves (tasks/caching.py's lock). Before building, the temp dirs of killed builders
    (SIGKILL, OOM, preemption) in this step are removed (``_builder_lock``), so a crash leaves no orphan behind
    its re-run.
    """
    key = artifact_key(step, key_parts)
    final = Path(root) / step / key
    if (final / _DONE).exists():
        return ArtifactRef(path=str(final), sha=(final / _DONE).read_text().strip())
    with building(step), _builder_lock(final):
        if (final / _DONE).exists():  # another producer finished while we waited for the lock
            return ArtifactRef(path=str(final), sha=(final / _DONE).read_text().strip())
        if final.exists():  # a marker-less dir at the real path was not put there by produce: stale, discard it
            _discard_stale(final)
        tmp = final.parent / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            build(tmp)
            fault_point("artifact-built")
            sha = hash_dir(tmp)
            (tmp / _KEY).write_text(json.dumps({"label": label, "parts": key_parts}, sort_keys=True,
                                               default=_json_default))
            (tmp / _DONE).write_text(sha)
            fault_point("artifact-marked")
            try:
                os.rename(tmp, final)  # fails (ENOTEMPTY/EEXIST) when another producer's rename came first
            except OSError:
                if not (final / _DONE).exists():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
                sha = (final / _DONE).read_text().strip()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fault_point("artifact-renamed")
    return ArtifactRef(path=str(final), sha=sha)


def _discard_stale(final: Path) -> None:
    """Move a marker-less ``final`` aside (atomic, so a concurrent producer never sees half of it) and delete
    it. If a concurrent producer published a complete dir in between, that one is put back instead."""
    aside = final.parent / f".stale-{final.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(final, aside)
    except FileNotFoundError:  # another producer moved it first
        return
    if (aside / _DONE).exists():
        try:
            os.rename(aside, final)
            return
        except OSError:  # and yet another one published since: theirs stays, this copy goes
            pass
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def _builder_lock(final: Path):
    """Hold the step's lock file (``<root>/.locks/<step>``) shared while building. A producer that gets it
    exclusively knows no live process is building anything of this step (flock dies with its process), so every
    ``.tmp-*`` / ``.stale-*`` dir there is a killed producer's leftover and is removed. Lock files are never
    deleted: deleting one while a process waits on it would let two processes each think they hold it alone."""
    _store_dir(final.parent)
    locks = final.parent.parent / ".locks"
    locks.mkdir(exist_ok=True)
    fd = os.open(locks / final.parent.name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # someone is building in this step: their temp dir is live; sweep another time
        else:
            for stale in [*final.parent.glob(".tmp-*"), *final.parent.glob(".stale-*")]:
                shutil.rmtree(stale, ignore_errors=True)
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _store_dir(d: Path) -> None:
    """``mkdir -p d`` in the artifact store; a file in the way (``artifacts_dir`` names a file) is a user error."""
    try:
        d.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ConfigError(f"artifacts_dir: cannot create {d} ({exc.strerror}: a file is in the way); set "
                          "artifacts_dir to a directory") from None


def work_dir(root: str | Path, step: str, key_parts: dict[str, Any]) -> Path:
    """A scratch directory fixed by ``(step, key_parts)``, beside the artifact it will become: a retried step
    finds what a killed attempt left there (e.g. a resumable training state). The caller removes it."""
    return Path(root) / step / f".work-{artifact_key(step, key_parts)}"


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and rename. The temp file is named after its writer
    (``.<name>.<pid>@<host>.<rand>.tmp``), so the next write of ``path`` removes those of dead writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_dead_temps(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}@{socket.gethostname()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    fault_point("write-file")
    os.replace(tmp, path)


def _sweep_dead_temps(path: Path) -> None:
    """Remove ``write_atomic`` temp files of ``path`` whose writer was a process of this host that is gone
    (a live one, or another host's, is left alone: its rename may still come)."""
    prefix, host = f".{path.name}.", socket.gethostname()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*@*.tmp"):
        owner = tmp.name[len(prefix) : -len(".tmp")].rsplit(".", 1)[0]
        pid, _, at = owner.partition("@")
        if at == host and pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write a list of flat dicts as a parquet table (lists become list columns)."""
    table = pa.Table.from_pylist(rows) if rows else pa.table({})
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    fault_point("write-file")
    os.replace(tmp, path)


def read_rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()
