"""Named fault points for crash tests: ``VARREASON_FAULT=[<step>/]<point>:<n>`` SIGKILLs this process at the
n-th hit of ``point`` (counted only while an artifact of ``step`` is being built, when a step is given).

The reliability tests (``tests/reliability/test_crash_resume.py``) kill a flow run at a point inside sampling,
scoring, training, evaluation or an artifact write, then re-run it and check nothing was lost. Unarmed (the
variable unset, as in every real run) a point costs one dict lookup and never fires.
"""

from __future__ import annotations

import contextlib
import os
import signal

_ENV = "VARREASON_FAULT"
_hits: dict[str, int] = {}
_step: list[str] = []  # the artifact steps being built, innermost last (set by ``varreason.io.produce``)


def _armed() -> tuple[str, int] | None:
    spec = os.environ.get(_ENV)
    if not spec:
        return None
    name, _, n = spec.rpartition(":")
    if not name or not n.isdigit() or int(n) < 1:
        raise ValueError(f"{_ENV}={spec!r}: expected <point>:<n> with n >= 1, e.g. train-step:5")
    return name, int(n)


def fault_point(name: str) -> None:
    """SIGKILL the current process if ``VARREASON_FAULT`` names ``name`` and this is its n-th hit."""
    if _ENV not in os.environ:
        return
    armed = _armed()
    scoped = f"{_step[-1]}/{name}" if _step else name
    if armed is None or armed[0] not in (name, scoped):
        return
    _hits[armed[0]] = _hits.get(armed[0], 0) + 1
    if _hits[armed[0]] == armed[1]:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def building(step: str):
    """Mark that an artifact of ``step`` is being built, for scoped fault points."""
    _step.append(step)
    try:
        yield
    finally:
        _step.pop()
