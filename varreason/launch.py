"""The launcher's entry point: ``training.train_sft`` on every rank of a multi-process job (style §4: the task
starts a launcher in a subprocess and reads back a file).

    accelerate launch --config_file deploy/accelerate/fsdp.yaml --num_processes 8 -m varreason.launch train SPEC.json
    torchrun --nproc_per_node 2 -m varreason.launch train SPEC.json

``SPEC.json`` (written by ``pipeline.train`` or a test) names the train/model configs, the init checkpoint, the
example parquet files, steps, seed, objective and the output dir. Every rank runs the same loop as the in-process
trainer with ``AccelerateRanks``: the same global batches (same seed), rows ``rank::world`` of each, the loss
times ``world`` because DDP/FSDP average gradients, so the optimisation is the single-process one split across
ranks. ``accelerate`` applies the config's distributed type (FSDP with bf16 and activation checkpointing in
``deploy/accelerate/fsdp.yaml``; DDP/gloo when started by ``torchrun`` on CPU). Rank 0 writes the full (gathered)
checkpoint with ``save_pretrained``, then, once every rank is past its last collective, ``train_result.json``.

Resume: with ``train.checkpoint_every > 0`` the ranks save ``accelerate``'s state (model, optimizer, each rank's
RNG; sharded as the FSDP config says) to ``<state_dir>/step-<n>/`` every ``checkpoint_every`` steps, and rank 0
then writes ``<state_dir>/latest.json`` (step, batch queue, batch-RNG state, running counters) through a temp
file and rename. ``latest.json`` names a state only once every rank has finished writing it, so a kill at any
moment leaves the previous complete state; a retried step (``pipeline.train`` keys ``state_dir`` to the
artifact) resumes from it.

Processes: ``run_launcher`` runs the launcher in a session of its own that dies with its caller and whose whole
process group is killed however the call ends; torchrun starts each rank in a session of its own (out of reach of
a group kill), so every rank dies with its launcher (``die_with_parent``). No process of a failed attempt
outlives it, and a retry starts clean. Not here yet: sequence packing (batches are length-grouped instead).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

# Only the standard library at import: ``run_launcher``'s guard imports this module before it becomes the
# launcher, so torch and the rest are imported where they are used.


class AccelerateRanks:
    """``training.Ranks`` over an ``accelerate.Accelerator`` (DDP or FSDP, as the launcher's config says)."""

    def __init__(self, acc):
        self.acc = acc
        self.rank, self.world, self.is_main, self.device = (acc.process_index, acc.num_processes,
                                                            acc.is_main_process, acc.device)

    def prepare(self, model, make_optimizer):
        model.train()
        self.model, self.opt = self.acc.prepare(model, make_optimizer(model.parameters()))
        return self.model, self.opt

    def backward(self, loss):
        self.acc.backward(loss * self.world)  # DDP/FSDP average gradients over ranks; the objective is their sum

    def clip_grad_norm_(self, max_norm):
        self.acc.clip_grad_norm_(self.model.parameters(), max_norm)

    def sum(self, values):
        import torch

        return [float(v) for v in self.acc.reduce(torch.tensor(values, device=self.device), reduction="sum")]

    def save(self, state_dir, meta, rng):
        """Every rank writes its part of ``step-<n>/``; then rank 0 points ``latest.json`` at it and drops older
        ones."""
        from varreason.faults import fault_point
        from varreason.io import write_json

        target = state_dir / f"step-{meta['step']}"
        self.acc.save_state(str(target), safe_serialization=True)  # covers the DDP model only; see restore
        self.acc.wait_for_everyone()  # latest.json must never name a state some rank is still writing
        if self.is_main:
            write_json(state_dir / "latest.json", {**meta, "rng": rng.getstate()})
            for old in state_dir.glob("step-*"):
                if old != target:
                    shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        fault_point("launcher-state-saved")

    def load(self, state_dir):
        latest = state_dir / "latest.json"
        return json.loads(latest.read_text()) if latest.exists() else None

    def restore(self, state_dir, saved, rng):
        # accelerate writes the optimizer (and under FSDP the model) and the RNG states with torch.save; loading
        # them with weights_only=True runs torch's restricted unpickler (tensors and containers, no code). They
        # are this job's own scratch files in the artifact store's work dir, never downloaded.
        self.acc.load_state(str(state_dir / f"step-{saved['step']}"), load_kwargs={"weights_only": True})
        version, internal, gauss = saved["rng"]
        rng.setstate((version, tuple(internal), gauss))
        if self.is_main:
            print(f"resuming training from step {saved['step']} of {saved['steps']} ({state_dir})", file=sys.stderr,
                  flush=True)


def train_from_spec(spec: dict) -> "TrainResult | None":
    """Run the spec's training on this rank; return the result on the main process (None elsewhere)."""
    import torch
    from accelerate import Accelerator

    from varreason.config import LauncherConfig, ModelConfig
    from varreason.io import read_rows, write_json
    from varreason.modeling import load_checkpoint, save_checkpoint
    from varreason.training import Example, train_sft

    t = spec["train"]  # the optimiser fields of TrainConfig the step reads (pipeline/train.py), not its step counts
    launcher = LauncherConfig.model_validate(t["launcher"]) if t.get("launcher") else None
    cfg, mcfg = SimpleNamespace(**{**t, "launcher": launcher}), ModelConfig.model_validate(spec["model"])
    acc = Accelerator(cpu=not torch.cuda.is_available())  # CPU ranks: DDP over gloo (the CPU test)
    ranks = AccelerateRanks(acc)
    # fp32 master weights whatever model.dtype says: AdamW on bf16 parameters rounds lr-1e-5 updates away (bf16
    # keeps ~3 significant digits); accelerate's mixed_precision (bf16 in fsdp.yaml) casts the compute. The
    # checkpoint is saved in model.dtype.
    model, tok = load_checkpoint(spec["init"], mcfg.model_copy(update={"dtype": "float32"}), device="cpu")
    if cfg.launcher is not None and cfg.launcher.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    examples = [Example.from_row(r) for p in spec["sets"] for r in read_rows(Path(p))]
    result = train_sft(model, tok, examples, cfg, spec["steps"], mcfg.max_length, spec["seed"],
                       objective=spec.get("objective", "weighted_sft"),
                       objective_options=spec.get("objective_options"), progress=False,
                       state_dir=Path(spec["state_dir"]) if spec.get("state_dir") else None, ranks=ranks)
    del model  # wrapped in place under FSDP: ranks.model must hold the last reference (_free_model)
    state = acc.get_state_dict(ranks.model)  # gathered full state dict (on the main process under FSDP)
    out = Path(spec["out"])
    if acc.is_main_process:
        net, _ = load_checkpoint(spec["init"], mcfg, device="cpu")
        net.load_state_dict({k: v.to(net.dtype) for k, v in state.items()}, strict=False)
        save_checkpoint(net, tok, out)
    acc.wait_for_everyone()
    if acc.is_main_process:  # after the last collective: only teardown is left (run_launcher's ``done``)
        write_json(out / DONE_FILE, {**asdict(result), "world": ranks.world})
    _free_model(acc, ranks)
    acc.end_training()
    return result if acc.is_main_process else None


def _free_model(acc, ranks: AccelerateRanks) -> None:
    """Free the wrapped model while the process group is still registered, before ``end_training``.

    The DDP wrapper's C++ ``Reducer`` holds a reference to the process group. Freed after
    ``destroy_process_group``, it drops the group's last reference, and ``~ProcessGroupGloo`` joins gloo's worker
    threads while this thread holds the GIL (the Reducer's binding does not release it; the group's own binding
    does). A worker still freeing a finished collective's tensors needs the GIL to release their Python objects:
    deadlock, the rank never exits, and torchrun waits on it forever (seen under load: the rank waited in
    ``std::thread::join`` under ``~Reducer``, its peer exited; pytorch issue 56297). Freed here, the Reducer
    drops one reference of several, and the join happens in ``destroy_process_group`` with the GIL released.
    """
    import gc
    import weakref

    wrapper = weakref.ref(ranks.model)
    ranks.model = ranks.opt = None
    acc.free_memory()  # accelerate's own references to the prepared model and optimizer
    gc.collect()  # the wrapper and its Reducer, reference cycles included
    if wrapper() is not None:
        print(f"warning: rank {ranks.rank}: the wrapped model outlives its training; the process group's teardown "
              "may deadlock (varreason/launch.py:_free_model)", file=sys.stderr, flush=True)


def launch_command(launcher, spec_path: str | Path) -> list[str]:
    """The command that runs ``spec_path`` under ``launcher`` (a ``LauncherConfig``)."""
    n = str(launcher.num_processes)
    tail = ["-m", "varreason.launch", "train", str(spec_path)]
    if launcher.kind == "torchrun":
        # --standalone: one node, a free rendezvous port (no clash with other jobs on the host)
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", n, *tail]
    cfg = ["--config_file", launcher.config] if launcher.config else []
    return [sys.executable, "-m", "accelerate.commands.launch", *cfg, "--num_processes", n, *tail]


DONE_FILE = "train_result.json"
_PR_SET_PDEATHSIG = 1
# The launcher's process, before it becomes the launcher: die with the caller (the setting survives exec).
_GUARD = ("import os, sys; from varreason.launch import die_with_parent; die_with_parent(int(sys.argv[1])); "
          "os.execvp(sys.argv[2], sys.argv[2:])")


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when its parent dies (Linux; elsewhere a no-op); exit at once if it already has.

    ``parent``: the parent's pid where the caller knows it; else the parent at the time of the call (a parent
    that died between starting this process and this call goes unnoticed).
    """
    if sys.platform != "linux":
        return
    import ctypes

    parent = os.getppid() if parent is None else parent
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the setting took hold
        os._exit(1)


def kill_group(pgid: int) -> None:
    """SIGKILL every process of group ``pgid`` (none left: nothing to do)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_launcher(cmd: list[str], timeout: float | None = None, done: Path | None = None, grace: float = 120.0
                 ) -> None:
    """Run ``cmd`` (``launch_command``) and wait, at most ``timeout`` seconds (None: no limit).

    ``done``: a file the ranks write once the job's work is complete and only teardown is left
    (``train_result.json``); a launcher still running ``grace`` seconds after it appears is stuck in teardown
    (a rank that never exits) and is ended, and the call succeeds. Whatever ends the call (success, a failed rank,
    the timeout, a stuck teardown, an exception or interrupt here) the launcher's whole process group is killed
    before it returns, and the ranks die with the launcher.

    Raises:
        subprocess.CalledProcessError: the launcher failed (a rank failed; torchrun then stops the others).
        subprocess.TimeoutExpired: ``timeout`` passed.
    """
    proc = subprocess.Popen([sys.executable, "-c", _GUARD, str(os.getpid()), *cmd], start_new_session=True)
    start, done_at = time.monotonic(), None
    try:
        while (rc := proc.poll()) is None:
            now = time.monotonic()
            if timeout is not None and now - start > timeout:
                raise subprocess.TimeoutExpired(cmd, timeout)
            if done_at is None and done is not None and done.exists():
                done_at = now
            if done_at is not None and now - done_at > grace:
                print(f"warning: the launcher was still running {grace:.0f} s after the job wrote {done.name}; "
                      "its process group was killed", file=sys.stderr, flush=True)
                rc = 0
                break
            time.sleep(0.2)
    finally:
        kill_group(proc.pid)
        proc.wait()
    if rc:
        raise subprocess.CalledProcessError(rc, cmd)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "train":
        print("usage: python -m varreason.launch train SPEC.json (under accelerate launch or torchrun)",
              file=sys.stderr)
        return 2
    die_with_parent()
    try:
        train_from_spec(json.loads(Path(argv[1]).read_text()))
    except BaseException:  # a failed rank exits now: torchrun stops the other ranks only once one has exited
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)  # skips interpreter teardown, which with a live process group can deadlock (see _free_model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
