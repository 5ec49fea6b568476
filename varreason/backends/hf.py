"""Batched sampling with transformers models: left-padded batches, KV cache, per-request seeds.

Every request (prompt i, sample j) draws its own Gumbel noise from a ``torch.Generator`` seeded with
``(seeds[i], j)``, so a request's sample does not depend on which batch or shard it runs in. Sampling is
Gumbel-max over ``logits / temperature`` restricted to the top-p nucleus, which is an exact draw from the
renormalised tempered nucleus distribution.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache

from varreason.backends.base import Completion, Rollouts, SamplingParams
from varreason.faults import fault_point


def request_seed(seed: int, j: int) -> int:
    return (seed * 1_000_003 + j) % (1 << 62)


def nucleus_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Bool mask [B, V] of the smallest top-probability set whose mass reaches ``top_p`` (always >= 1 token)."""
    if top_p >= 1.0:
        return torch.ones_like(logits, dtype=torch.bool)
    probs = torch.softmax(logits, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    keep_sorted = (sorted_p.cumsum(-1) - sorted_p) < top_p  # mass before this token is still short of top_p
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


class HFSampler:
    """``Sampler`` over a causal LM held in memory. ``batch_size`` counts sequences per forward."""

    def __init__(self, model, tokenizer, batch_size: int = 256, device: str = "cpu", progress: bool = True):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.batch_size, self.device, self.progress = batch_size, device, progress

    def sync_weights(self, checkpoint: str) -> None:
        from transformers import AutoModelForCausalLM

        from varreason.modeling import CONSTRUCT

        with CONSTRUCT:
            self.model = AutoModelForCausalLM.from_pretrained(checkpoint, use_safetensors=True).to(self.device).eval()

    def _stop_ids(self, stop: tuple[str, ...]) -> list[list[int]]:
        return [self.tokenizer.encode(s, add_special_tokens=False) for s in stop] + [[self.tokenizer.eos_token_id]]

    def _string_stop(self, tokens: list[int], stop: tuple[str, ...]) -> tuple[int, str] | None:
        """``(tokens to keep, text)`` if a stop string ends in the newest token, else None.

        A multi-token stop string (``<|end_of_thought|>`` under a byte-level BPE such as Qwen3's) is not always
        sampled as ``encode(stop)``: BPE merges across its edge (``.<|`` then ``end``...) give other ids for the
        same text. Like vLLM, stop on the text: the text is cut before the stop string; the ids keep the tokens
        that end before it (a token that straddles the edge is dropped from the ids, its head stays in the text).
        """
        width = max(len(s) for s in stop) + 2  # every token decodes to >= 1 character here
        if not any(s and s in self.tokenizer.decode(tokens[-width:], skip_special_tokens=False) for s in stop):
            return None
        text = self.tokenizer.decode(tokens, skip_special_tokens=False)
        pos = min(text.find(s) for s in stop if s and s in text)
        keep = len(tokens)
        while keep and len(self.tokenizer.decode(tokens[:keep], skip_special_tokens=False)) > pos:
            keep -= 1
        return keep, text[:pos]

    @torch.no_grad()
    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> Rollouts:
        if len(seeds) != len(prompts):
            raise ValueError(f"need one seed per prompt: {len(seeds)} seeds for {len(prompts)} prompts")
        encoded = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        requests = [(i, j) for i in range(len(prompts)) for j in range(params.n)]
        requests.sort(key=lambda r: len(encoded[r[0]]))  # similar lengths share a batch: less padding
        out: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        stops = self._stop_ids(params.stop)
        n_generated = 0
        bar = tqdm(total=len(requests), desc="sample", unit="seq", disable=None if self.progress else True, leave=False)
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            ids = [encoded[i] for i, _ in batch]
            gens = [torch.Generator().manual_seed(request_seed(seeds[i], j)) for i, j in batch]
            comps, used = self._generate_batch(ids, gens, params, stops)
            n_generated += used
            for (i, j), comp in zip(batch, comps):
                out[i][j] = comp
            bar.update(len(batch))
        bar.close()
        return Rollouts(completions=out, n_generated=n_generated)  # type: ignore[arg-type]

    def _generate_batch(self, ids: list[list[int]], gens: list[torch.Generator], params: SamplingParams,
                        stops: list[list[int]]) -> tuple[list[Completion], int]:
        B, width = len(ids), max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((B, width), pad, dtype=torch.long)
        mask = torch.zeros((B, width), dtype=torch.long)
        for b, x in enumerate(ids):  # left padding keeps every row's next position at the right edge
            input_ids[b, width - len(x):] = torch.tensor(x)
            mask[b, width - len(x):] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                            use_cache=True, logits_to_keep=1).logits[:, -1].float()  # [B, V]
        tokens: list[list[int]] = [[] for _ in range(B)]
        lp_s: list[list[float]] = [[] for _ in range(B)]
        lp_m: list[list[float]] = [[] for _ in range(B)]
        finish = ["length"] * B
        texts: dict[int, str] = {}  # rows cut at a stop string inside a token: the text before the stop string
        multi = any(len(s) > 1 for s in stops)  # a stop string of several tokens can also come tokenised otherwise
        done = torch.zeros(B, dtype=torch.bool)
        next_pos = positions[:, -1] + 1
        used = 0
        for _ in range(params.max_new_tokens):
            logp_model = torch.log_softmax(logits, -1)  # [B, V], temperature 1
            scaled = logits / params.temperature
            scaled = scaled.masked_fill(~nucleus_mask(scaled, params.top_p), float("-inf"))
            logp_samp = torch.log_softmax(scaled, -1)
            noise = torch.stack([torch.rand(logits.shape[-1], generator=g) for g in gens]).to(self.device)
            gumbel = -torch.log(-torch.log(noise.clamp(1e-20, 1.0 - 1e-7)))
            choice = (logp_samp + gumbel).argmax(-1)  # [B]
            rows = torch.arange(B)
            cs, cm = logp_samp[rows, choice].tolist(), logp_model[rows, choice].tolist()
            for b, tok in enumerate(choice.tolist()):
                if done[b]:
                    continue
                used += 1
                tokens[b].append(tok)
                lp_s[b].append(cs[b])
                lp_m[b].append(cm[b])
                for s in stops:
                    if s and tokens[b][-len(s):] == s:
                        del tokens[b][-len(s):], lp_s[b][-len(s):], lp_m[b][-len(s):]
                        finish[b], done[b] = "stop", True
                        break
                else:
                    cut = self._string_stop(tokens[b], params.stop) if multi else None
                    if cut is not None:
                        keep, texts[b] = cut
                        del tokens[b][keep:], lp_s[b][keep:], lp_m[b][keep:]
                        finish[b], done[b] = "stop", True
            fault_point("sample-token")
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=mask.device)], dim=1)
            logits = self.model(input_ids=choice[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                                past_key_values=cache, use_cache=True).logits[:, -1].float()
            next_pos = next_pos + 1
        comps = [Completion(text=texts[b] if b in texts else self.tokenizer.decode(tokens[b], skip_special_tokens=False),
                            token_ids=tokens[b], logp_sampling=lp_s[b], logp_model=lp_m[b], finish_reason=finish[b])
                 for b in range(B)]
        return comps, used
