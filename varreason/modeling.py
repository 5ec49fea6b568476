"""Tokenizer and model construction, checkpoint save/load (safetensors only).

The ``tiny`` backbone is a ``Qwen3ForCausalLM`` trained from scratch with a character-level tokenizer built
locally with the ``tokenizers`` library: one token per character plus the chat/thought markers as special
tokens. Checkpoints are written with ``save_pretrained`` and load with plain ``transformers``.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from varreason.config import ModelConfig, PromptConfig

PAD, EOS = "<|pad|>", "<|endoftext|>"
MARKERS = ["<|im_start|>", "<|im_end|>", "<|begin_of_thought|>", "<|end_of_thought|>",
           "<|begin_of_solution|>", "<|end_of_solution|>"]
_SPECIAL = re.compile("|".join(re.escape(m) for m in MARKERS + [PAD, EOS]))

# Building a model is not thread-safe: transformers initialises parameters on the meta device by patching
# torch.nn.Module process-wide while it loads, and a seeded init draws from torch's global generator. Steps of
# concurrent chains (em.concurrent_chains) run in threads of one process, so every construction holds this lock.
CONSTRUCT = threading.RLock()


def build_char_tokenizer(chars: list[str], prompt: PromptConfig) -> PreTrainedTokenizerFast:
    """Character-level tokenizer over ``chars`` plus every character of the prompt templates.

    The markers of ``prompt`` and ``MARKERS`` are single special tokens, so the thought/solution boundaries are
    exact token boundaries (the reference cuts strings at ``'<|end_of'`` instead; see ``prompts.py``).
    """
    template_text = _SPECIAL.sub("", prompt.reasoner + prompt.posterior).replace("{question}", "").replace("{hint}", "")
    specials = [PAD, EOS] + [m for m in dict.fromkeys(MARKERS + [prompt.end_of_thought, prompt.begin_of_solution,
                                                                  prompt.end_of_solution])]
    alphabet = sorted(set(chars) | set(template_text))
    vocab = {tok: i for i, tok in enumerate(specials + alphabet + ["<|unk|>"])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token="<|unk|>",
                                   model_max_length=1 << 20)


def build_tiny_model(cfg: ModelConfig, tokenizer: PreTrainedTokenizerFast, seed: int) -> Qwen3ForCausalLM:
    """A freshly initialised Qwen3 (deterministic in ``seed``)."""
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        head_dim=cfg.head_dim, max_position_embeddings=cfg.max_length, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        rope_theta=10000.0,
    )
    with CONSTRUCT:
        torch.manual_seed(seed)
        return Qwen3ForCausalLM(config)


def save_checkpoint(model: torch.nn.Module, tokenizer, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def load_checkpoint(path: str | Path, cfg: ModelConfig, device: str = "cpu"):
    """Load (model, tokenizer) from a checkpoint dir. Only safetensors weights are accepted (no pickle)."""
    path = Path(path)
    if not any(path.glob("*.safetensors")):
        raise FileNotFoundError(f"{path} has no .safetensors weights; only safetensors checkpoints are loaded")
    dtype = getattr(torch, cfg.dtype)
    with CONSTRUCT:
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype=dtype,
                                                     trust_remote_code=cfg.trust_remote_code).to(device)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
