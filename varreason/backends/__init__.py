"""Sampling backends behind one interface (``base.Sampler``): ``hf`` (transformers, CPU/GPU), ``vllm`` (GPU)."""
