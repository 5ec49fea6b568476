"""The training loop's data path (varreason/training.py): extra per-example columns reach an objective that
reads them, AdamW's settings come from the config, and a column-reading objective trains through the same loop."""

from pathlib import Path

import pytest
import torch

from varreason.config import DataError, load_config
from varreason.modeling import build_char_tokenizer, build_tiny_model
from varreason.objectives import IGNORE, OBJECTIVES, weighted_sft_loss
from varreason.training import Example, collate, encode_examples, load_state, train_sft

ROOT = Path(__file__).resolve().parents[2]


class _CharTok:
    """One id per character; eos is 0."""

    eos_token_id = 0

    def encode(self, s: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in s]


def test_from_row_keeps_the_other_fields_as_columns():
    ex = Example.from_row({"prompt": "p", "response": "r", "weight": 2, "advantage": -0.5, "qid": "q1"})
    assert (ex.prompt, ex.response, ex.weight) == ("p", "r", 2.0)
    assert ex.columns == {"advantage": -0.5, "qid": "q1"}


def test_columns_are_encoded_and_collated_in_place():
    # "ab" + "cd" + eos: ids [97, 98, 99, 100, 0], prompt_len 2; targets are the 3 response tokens (c, d, eos)
    ex = [Example("ab", "cd", 1.0, {"advantage": -1.5, "old_logp": [-0.1, -0.2, -0.3], "qid": "x"}),
          Example("xyz", "w", 0.5, {"advantage": 2.0, "old_logp": [-0.4, -0.5], "qid": "y"})]
    enc = encode_examples(_CharTok(), ex, max_length=10, columns=("advantage", "old_logp"))
    assert enc[0].columns == {"advantage": -1.5, "old_logp": [-0.1, -0.2, -0.3]}  # qid not asked for, not carried
    b = collate(enc, pad_id=7, columns=("advantage", "old_logp"))
    assert b["columns"]["advantage"].tolist() == [-1.5, 2.0]
    assert b["labels"].tolist() == [[IGNORE, 99, 100, 0, IGNORE], [IGNORE, IGNORE, 119, 0, IGNORE]]
    logp = b["columns"]["old_logp"]  # [B, T]: each value sits where its target token's label is
    assert logp.shape == (2, 5) and logp.dtype == torch.float32
    assert logp[0].tolist() == pytest.approx([0.0, -0.1, -0.2, -0.3, 0.0])
    assert logp[1].tolist() == pytest.approx([0.0, 0.0, -0.4, -0.5, 0.0])
    assert b["weights"].tolist() == [1.0, 0.5]


def test_per_token_column_is_cut_with_a_truncated_example():
    enc = encode_examples(_CharTok(), [Example("ab", "cdef", 1.0, {"v": [1.0, 2.0, 3.0, 4.0, 5.0]})], max_length=4,
                          columns=("v",))
    assert enc[0].ids == [97, 98, 99, 100] and enc[0].columns["v"] == [1.0, 2.0]


def test_missing_or_misaligned_column_is_a_data_error():
    with pytest.raises(DataError, match="no column 'advantage'"):
        encode_examples(_CharTok(), [Example("ab", "cd")], 10, columns=("advantage",))
    with pytest.raises(DataError, match="has 2 values but the response has 3 target tokens"):
        encode_examples(_CharTok(), [Example("ab", "cd", 1.0, {"v": [1.0, 2.0]})], 10, columns=("v",))


def _setup(over=None):
    cfg = load_config(ROOT / "params.yaml", "smoke", {"train.batch_size": 4, **(over or {})})
    tok = build_char_tokenizer(list("0123456789+-"), cfg.prompt)
    rows = [Example(f"<|im_start|>{a}+{b}<|im_end|><|begin_of_thought|>", f"{a + b}", 0.5 + a % 2,
                    {"advantage": float(a - b)}) for a in range(1, 7) for b in range(1, 3)]
    return cfg, tok, rows


def test_an_objective_reading_a_column_trains_through_the_same_loop(monkeypatch, one_thread):
    """A probe objective with a keyword-only ``advantage`` gets the column as [B]; computing weighted SFT it
    ends, bit for bit, where the registered weighted_sft ends: the loop itself does not depend on the objective."""
    seen = []

    def probe(logits, labels, weights, normalizer, *, advantage):
        seen.append((advantage.clone(), weights.clone()))
        return weighted_sft_loss(logits, labels, weights, normalizer)

    monkeypatch.setitem(OBJECTIVES, "probe", probe)
    cfg, tok, rows = _setup()
    nets = [build_tiny_model(cfg.model, tok, 0) for _ in range(2)]
    a = train_sft(nets[0], tok, rows, cfg.train, 3, 32, 0, objective="weighted_sft", progress=False)
    b = train_sft(nets[1], tok, rows, cfg.train, 3, 32, 0, objective="probe", progress=False)
    assert len(seen) == 3 and all(adv.shape == w.shape == (4,) for adv, w in seen)
    by_weight = {(float(r.columns["advantage"]), r.weight) for r in rows}
    assert all((float(x), float(y)) in by_weight for adv, w in seen for x, y in zip(adv, w))
    assert (a.tokens, a.final_loss) == (b.tokens, b.final_loss)
    for (k, v), w in zip(nets[0].state_dict().items(), nets[1].state_dict().values()):
        assert torch.equal(v, w), k


def test_adam_settings_come_from_the_config(tmp_path, one_thread):
    cfg, tok, rows = _setup({"train.adam_betas": [0.8, 0.95], "train.adam_eps": 1e-6, "train.checkpoint_every": 1})
    train_sft(build_tiny_model(cfg.model, tok, 0), tok, rows, cfg.train, 2, 32, 0, progress=False, state_dir=tmp_path)
    (group,) = load_state(tmp_path)["optimizer"]["param_groups"]  # the state saved after step 1
    assert tuple(group["betas"]) == (0.8, 0.95) and group["eps"] == 1e-6
    assert group["weight_decay"] == cfg.train.weight_decay
