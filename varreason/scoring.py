"""Per-token log-probs of given continuations under a model, in length-grouped batches.

``score(model, contexts, targets)`` returns, for each pair, ``log p(target_t | context, target_<t)`` for every
target token, from one forward pass per batch of similar-length sequences (never one sequence per forward).
Only the positions that predict a target token go through the LM head: the decoder's last hidden states are
gathered there ([N, H], N = target tokens of the batch), then the head and the fp32 log-softmax run in
chunks of at most ``max_logits`` fp32 logits. So neither the prompt's positions nor a [B, W, V] logits tensor
cost anything: at Qwen3's vocabulary (V = 151,936) a 16k-token batch would otherwise hold 5-10 GB of logits.
Temperature 1 is the untempered density the reference uses for both pi and q (method.md §5.2). Models whose
forward does more than ``lm_head`` after the decoder (logit soft-capping or scaling) take the plain forward.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from varreason.faults import fault_point


@torch.no_grad()
def score(model, contexts: list[list[int]], targets: list[list[int]], max_tokens_per_batch: int = 16384,
          pad_id: int = 0, device: str = "cpu", progress: bool = True, temperature: float = 1.0,
          max_logits: int = 1 << 25) -> list[list[float]]:
    """Token log-probs of ``targets[i]`` after ``contexts[i]``.

    Args:
        contexts, targets: token ids; ``len(contexts[i]) >= 1``.
        max_tokens_per_batch: padded tokens per forward (batch rows x longest row).
        temperature: score under softmax(logits / temperature); 1.0 is the model's own density.
        max_logits: fp32 logits per LM-head chunk (memory bound: 2^25 = 128 MiB).
    Returns:
        ``out[i]``: list of ``len(targets[i])`` floats.
    """
    if len(contexts) != len(targets):
        raise ValueError(f"{len(contexts)} contexts but {len(targets)} targets")
    model.eval()
    order = sorted(range(len(contexts)), key=lambda i: len(contexts[i]) + len(targets[i]))
    out: list[list[float] | None] = [None] * len(contexts)
    bar = tqdm(total=len(order), desc="score", unit="seq", disable=None if progress else True, leave=False)
    start = 0
    while start < len(order):
        longest = len(contexts[order[start]]) + len(targets[order[start]])
        end = start
        while end < len(order):
            longest = max(longest, len(contexts[order[end]]) + len(targets[order[end]]))
            if (end - start + 1) * longest > max_tokens_per_batch and end > start:
                break
            end += 1
        batch = order[start:end]
        _score_batch(model, [contexts[i] for i in batch], [targets[i] for i in batch], pad_id, device,
                     out, batch, temperature, max_logits)
        bar.update(len(batch))
        fault_point("score-batch")
        start = end
    bar.close()
    return out  # type: ignore[return-value]


_HEAD_EXTRAS = ("final_logit_softcapping", "logit_scale", "logits_scaling")  # forward does more than lm_head


def _target_hidden(model, ids: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor):
    """(hidden states [N, H] at the predicting positions, the head) or (logits [N, V], None) for models whose
    forward post-processes the head's output."""
    if any(getattr(model.config, k, None) for k in _HEAD_EXTRAS):
        return model(input_ids=ids, attention_mask=mask).logits[rows, pos], None  # [N, V]
    hidden = model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, W, H]
    return hidden[rows, pos], model.get_output_embeddings()  # [N, H]


def _score_batch(model, ctxs, tgts, pad_id, device, out, index, temperature, max_logits) -> None:
    seqs = [c + t for c, t in zip(ctxs, tgts)]
    B, width = len(seqs), max(len(s) for s in seqs)
    ids = torch.full((B, width), pad_id, dtype=torch.long)
    mask = torch.zeros((B, width), dtype=torch.long)
    for b, s in enumerate(seqs):  # right padding: positions start at 0 for every row
        ids[b, : len(s)] = torch.tensor(s)
        mask[b, : len(s)] = 1
    # target token j of row b sits at len(c) + j and is predicted by position len(c) + j - 1
    rows = torch.tensor([b for b, t in enumerate(tgts) for _ in t], dtype=torch.long)  # [N]
    pos = torch.tensor([len(c) - 1 + j for c, t in zip(ctxs, tgts) for j in range(len(t))], dtype=torch.long)
    tok = torch.tensor([x for t in tgts for x in t], dtype=torch.long).to(device)  # [N]
    hidden, head = _target_hidden(model, ids.to(device), mask.to(device), rows.to(device), pos.to(device))
    lp = torch.empty(len(tok), dtype=torch.float32, device=hidden.device)
    vocab = head.weight.shape[0] if head is not None else hidden.shape[-1]
    step = max(1, max_logits // vocab)
    for s in range(0, len(tok), step):
        logits = (head(hidden[s : s + step]) if head is not None else hidden[s : s + step]).float()  # [n, V]
        if temperature != 1.0:
            logits = logits / temperature
        # one fused pass (PyTorch's vectorised log_softmax) beats logsumexp's intermediates at V = 151,936
        lp[s : s + step] = torch.log_softmax(logits, -1).gather(-1, tok[s : s + step, None])[:, 0]
    flat = lp.tolist()
    at = 0
    for b, t in enumerate(tgts):
        out[index[b]] = flat[at : at + len(t)]
        at += len(t)
