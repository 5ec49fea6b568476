"""The resumable training state round-trips exactly through safetensors + JSON, with nothing pickled."""

import json
import math
import random
import struct

import pytest
import torch

from varreason.training import STATE_FILE, _rng_state, load_state, save_state


def test_state_round_trips_exactly(tmp_path, one_thread):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(7, 4), torch.nn.Linear(4, 7))
    model[1].weight = model[0].weight  # tied weights share storage, as in the tiny Qwen3
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.98))
    for _ in range(2):
        opt.zero_grad()
        model(torch.tensor([[1, 2, 3]])).sum().backward()
        opt.step()
    rng = random.Random(3)
    rng.random()
    state = {"step": 2, "steps": 9, "n_data": 5, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "rng": _rng_state(rng), "queue": [[0, 3], [1, 2, 4]], "tokens": 11, "nll_sum": 1.25,
             "last_loss": float("nan")}
    save_state(tmp_path, state)
    back = load_state(tmp_path)
    assert back["queue"] == state["queue"] and back["step"] == 2 and math.isnan(back["last_loss"])
    assert back["rng"]["python"] == rng.getstate()  # tuples stay tuples
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    for k, v in state["model"].items():
        assert torch.equal(back["model"][k], v), k
    saved, got = state["optimizer"], back["optimizer"]
    assert got["param_groups"] == saved["param_groups"]
    assert set(got["state"]) == set(saved["state"]) and all(isinstance(k, int) for k in got["state"])
    for i, fields in saved["state"].items():
        for name, t in fields.items():
            assert torch.equal(got["state"][i][name], t), (i, name)
    opt2 = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.98))
    opt2.load_state_dict(got)  # what train_sft does on resume

    raw = (tmp_path / STATE_FILE).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])  # plain safetensors: a JSON header, then raw tensor bytes
    assert "varreason_state" in header["__metadata__"]
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temp file left


def test_unsupported_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot save"):
        save_state(tmp_path, {"step": 1, "bad": object()})
    assert load_state(tmp_path) is None
