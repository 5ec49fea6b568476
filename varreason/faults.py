"""Named fault points for crash tests: ``VARREASON_FAULT=[<scope>/]<point>:<n>`` SIGKILLs this process at the
n-th hit of ``point`` (counted only inside a ``building(scope)`` block, when a scope is given). Scopes nest:
``varreason.io.produce`` opens one per artifact directory (``checkpoint``, ``traces``, ``eval`` ...) and
``varreason.steps.run_step`` one per task run around it (``train-q-em-acc-r1``); a scoped point matches any open
scope, so ``train-q-em-acc-r1/train-step:5`` is the 5th optimizer step of that posterior refresh.

Points (``grep -rn fault_point varreason``): ``sample-token`` (HF decoding step), ``score-batch``,
``train-step``, ``eval-generate`` (lm-eval request batch), ``write-file`` (a file written, not yet renamed),
``artifact-built`` / ``artifact-marked`` / ``artifact-renamed`` (``produce``: built, marker written, in place),
``launcher-state-saved`` (``varreason.launch``: a distributed training state on disk).

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
_step: list[str] = []  # the open scopes, innermost last (``varreason.io.produce`` opens its step's)


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
    if armed is None or (armed[0] != name and armed[0] not in {f"{s}/{name}" for s in _step}):
        return
    _hits[armed[0]] = _hits.get(armed[0], 0) + 1
    if _hits[armed[0]] == armed[1]:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def building(step: str):
    """Open scope ``step`` for scoped fault points (an artifact step, or a finer label around one)."""
    _step.append(step)
    try:
        yield
    finally:
        _step.pop()
