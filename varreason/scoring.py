"""Per-token log-probs of given continuations under a model, in length-grouped batches.

``score(model, contexts, targets)`` returns, for each pair, ``log p(target_t | context, target_<t)`` for every
target token, from one forward pass per batch of similar-length sequences (never one sequence per forward).
The log-softmax is taken in fp32 over the target positions only, with temperature 1: this is the untempered
density the reference uses for both pi and q (method.md §5.2).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from varreason.faults import fault_point


@torch.no_grad()
def score(model, contexts: list[list[int]], targets: list[list[int]], max_tokens_per_batch: int = 16384,
          pad_id: int = 0, device: str = "cpu", progress: bool = True, temperature: float = 1.0
          ) -> list[list[float]]:
    """Token log-probs of ``targets[i]`` after ``contexts[i]``.

    Args:
        contexts, targets: token ids; ``len(contexts[i]) >= 1``.
        max_tokens_per_batch: padded tokens per forward (batch rows x longest row).
        temperature: score under softmax(logits / temperature); 1.0 is the model's own density.
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
                     out, batch, temperature)
        bar.update(len(batch))
        fault_point("score-batch")
        start = end
    bar.close()
    return out  # type: ignore[return-value]


def _score_batch(model, ctxs, tgts, pad_id, device, out, index, temperature) -> None:
    seqs = [c + t for c, t in zip(ctxs, tgts)]
    B, width = len(seqs), max(len(s) for s in seqs)
    ids = torch.full((B, width), pad_id, dtype=torch.long)
    mask = torch.zeros((B, width), dtype=torch.long)
    for b, s in enumerate(seqs):  # right padding: positions start at 0 for every row
        ids[b, : len(s)] = torch.tensor(s)
        mask[b, : len(s)] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits  # [B, W, V]
    for b, (c, t) in enumerate(zip(ctxs, tgts)):
        if not t:
            out[index[b]] = []
            continue
        pred = logits[b, len(c) - 1 : len(c) - 1 + len(t)].float() / temperature  # [T, V] predicts targets
        lp = torch.log_softmax(pred, -1).gather(-1, torch.tensor(t, device=pred.device)[:, None])[:, 0]
        out[index[b]] = lp.tolist()
