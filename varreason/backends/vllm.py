"""vLLM sampling backend (the ``gpu`` extra) behind the same ``Sampler`` interface as ``hf.HFSampler``.

Each (prompt i, sample j) is one request with its own seed ``request_seed(seeds[i], j)``, so samples do not
depend on batching or sharding, as in the HF backend (the two backends draw different random streams, so
they agree in distribution, not sample by sample). Prefix caching is on: the K samples of a prompt and the
M answer rollouts of a trace share their prompt's KV blocks.

Status: written against vLLM's offline ``LLM.generate`` API; not exercised by CI (no GPU there). vLLM is
imported only when this class is built.
"""

from __future__ import annotations

from varreason.backends.base import Completion, Rollouts, SamplingParams
from varreason.backends.hf import request_seed
from varreason.config import ModelConfig


class VLLMSampler:
    def __init__(self, checkpoint: str, model_cfg: ModelConfig, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.85):
        try:
            from vllm import LLM
        except ImportError as exc:
            raise RuntimeError("sampling.backend 'vllm' needs the gpu extra: pip install -e '.[gpu]' "
                               "(or use sampling.backend: hf)") from exc
        self._model_cfg = model_cfg
        self._kwargs = dict(tensor_parallel_size=tensor_parallel_size, dtype=model_cfg.dtype,
                            enable_prefix_caching=True, gpu_memory_utilization=gpu_memory_utilization,
                            trust_remote_code=model_cfg.trust_remote_code, max_model_len=model_cfg.max_length)
        self.llm = LLM(model=checkpoint, **self._kwargs)

    def sync_weights(self, checkpoint: str) -> None:
        from vllm import LLM

        del self.llm  # release the GPU before the next engine claims it
        self.llm = LLM(model=checkpoint, **self._kwargs)

    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> Rollouts:
        from vllm import SamplingParams as VSP

        if len(seeds) != len(prompts):
            raise ValueError(f"need one seed per prompt: {len(seeds)} seeds for {len(prompts)} prompts")
        reqs = [(i, j) for i in range(len(prompts)) for j in range(params.n)]
        sps = [VSP(n=1, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_new_tokens,
                   stop=list(params.stop), seed=request_seed(seeds[i], j) % (1 << 31), logprobs=0)
               for i, j in reqs]
        outs = self.llm.generate([prompts[i] for i, _ in reqs], sps, use_tqdm=True)
        result: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        n_generated = 0
        for (i, j), out in zip(reqs, outs):
            o = out.outputs[0]
            # logprobs=0 returns the sampled token's log-prob; logp_model is left NaN: scoring is a separate pass.
            lps = [next(iter(d.values())).logprob if d else float("nan") for d in (o.logprobs or [])]
            n_generated += len(o.token_ids)
            result[i][j] = Completion(text=o.text, token_ids=list(o.token_ids), logp_sampling=lps,
                                      logp_model=[float("nan")] * len(lps),
                                      finish_reason="stop" if o.finish_reason == "stop" else "length")
        return Rollouts(completions=result, n_generated=n_generated)  # type: ignore[arg-type]
