"""What the sampler-backend tests share (HF: tests/varreason/test_hf_sampler.py, vLLM: tests/varreason/backends/
test_vllm.py): prompts of different lengths, a tiny model with peaked next-token distributions, and log-probs of
one direct forward pass to check the backends' log-probs against."""

import torch

from varreason.config import ModelConfig, PromptConfig
from varreason.modeling import build_tiny_model

PROMPT = PromptConfig(reasoner="<|im_start|>{question}<|im_end|><|begin_of_thought|>",
                      posterior="<|im_start|>{question}={hint}<|im_end|><|begin_of_thought|>")
QUESTIONS = ["1+2", "12-3+45", "7", "9-8"]  # different lengths: left padding is exercised


def peaked_model(cfg: ModelConfig, tok, seed: int = 0):
    """A tiny model whose matrices are re-drawn with std 0.3: the default 0.02 gives near-uniform next-token
    distributions, under which a wrong position or a leaking pad would barely move the log-probs and greedy
    decoding would be fragile."""
    m = build_tiny_model(cfg, tok, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3, generator=g)
    return m.eval()


def prompts() -> list[str]:
    return [PROMPT.reasoner.replace("{question}", q) for q in QUESTIONS]


def forward_logprobs(model, tok, prompt, token_ids, temperature=1.0):
    """Log-softmax of one direct, unpadded, uncached forward over prompt + completion, at the completion tokens."""
    p = tok.encode(prompt, add_special_tokens=False)
    with torch.no_grad():
        logits = model(torch.tensor([p + token_ids])).logits[0].float()
    lp = torch.log_softmax(logits / temperature, -1)
    return [lp[len(p) - 1 + j, t].item() for j, t in enumerate(token_ids)]
