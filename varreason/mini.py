"""A CPU miniature of the paper's Qwen3 inputs, stored where the ``qwen3`` code path reads them.

    python -m varreason.mini build [--out mini] [--vocab full] [--seed 0]

writes, under ``--out``:

* ``qwen3-mini/``: a random-init ``Qwen3ForCausalLM`` (``save_pretrained``, bf16 safetensors, Qwen3's config
  conventions: tied embeddings, rope_theta 1e6, bos = eos = ``<|endoftext|>``) with a byte-level BPE tokenizer
  trained with ``tokenizers`` on local text (the shipped benchmark problems and the mini dataset) in Qwen2's
  layout (NFC, Qwen2's split regex, byte-level) and saved as ``Qwen2Tokenizer``, Qwen3's added tokens after the
  learnt vocabulary (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``, ..., ``<think>``) and a ChatML chat
  template. It loads through the calls that load ``Qwen/Qwen3-4B-Base`` (``AutoModelForCausalLM`` /
  ``AutoTokenizer.from_pretrained``, the vLLM engine (``vllm.LLM``)). As in Qwen3, the Bespoke markers
  (``<|begin_of_thought|>`` ...) are not tokens of their own: they are text, several BPE tokens each.
* ``qwen3-mini-vocab151936/`` (``--vocab full``): the same with Qwen3's 151,936 embedding rows (more rows than
  tokenizer entries, as in Qwen3), for the scoring benchmark.
* ``hf/``: an ``HF_HOME`` holding, under the hub ids the ``qwen3`` profile and the eval suites read,
  miniature data (NOT the real datasets): ``datasets/`` is the ``datasets`` Arrow cache that
  ``datasets.load_dataset(id, config)`` reads with ``HF_HUB_OFFLINE=1`` (Bespoke-Stratos rows built from the
  shipped MATH500 problems, and the hand-written suite fixtures of ``tests/fixtures/suites`` for GPQA-Diamond,
  OlympiadBench and MMLU-Pro); ``hub/`` is a hub file cache with LiveCodeBench's ``test.jsonl``/``test2.jsonl``
  (lm-eval reads those by ``hf://`` path; see ``varreason.eval.harness.localize_hub_files``).

Everything is deterministic in ``--seed``: the same bytes for the same seed (weights, tokenizer, rows), so the
artifact keys that name these paths keep meaning the same content. Run a profile on it with
``HF_HOME=<out>/hf`` (``docs/paper-scale.md``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parent / "eval" / "data"
QWEN3_VOCAB = 151_936
PRETRAIN_STEPS = 200
MINI_VOCAB = 2048  # learnt BPE entries (256 bytes + merges), before the added tokens
DIMS = {"hidden_size": 64, "intermediate_size": 192, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1, "head_dim": 32, "max_position_embeddings": 2048}
# Qwen3's added tokens in id order after its BPE vocabulary (151643..151668); the last six are not special.
QWEN3_ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
               "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
               "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
               "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
               "<tool_response>", "</tool_response>", "<think>", "</think>"]
NOT_SPECIAL = {"<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"}
QWEN2_SPLIT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
               r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
CHATML = ("{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
          "{%- endif %}")
MARKERS = ["<|begin_of_thought|>", "<|end_of_thought|>", "<|begin_of_solution|>", "<|end_of_solution|>"]
BESPOKE_ID = "zhouxiangxin/Bespoke-Stratos-17k-Reformatted"
# eval suite -> (hub id, config, split, fixture file in tests/fixtures/suites): the ids of the task YAMLs
SUITES = {"vr_gpqa_diamond": ("Idavidrein/gpqa", "gpqa_diamond", "train", "gpqa_diamond.jsonl"),
          "vr_olympiadbench": ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train", "olympiadbench.jsonl"),
          "vr_mmlu_pro": ("TIGER-Lab/MMLU-Pro", "default", "test", "mmlu_pro.jsonl")}
LCB_REPO, LCB_FILES = "livecodebench/code_generation_lite", ("test.jsonl", "test2.jsonl")
BOXED = "Return your final response within \\boxed{}."
NOTE = "varreason miniature (python -m varreason.mini build): NOT the hub dataset of this id"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def bespoke_rows(n_math: int = 300, n_code: int = 20, seed: int = 0) -> list[dict]:
    """Rows in the Bespoke-Stratos-17k-Reformatted schema: ``n_math`` from the shipped MATH500 problems (short,
    templated thoughts; the reference solution ending in the boxed answer) and ``n_code`` code problems without
    a box (the dataset's APPS/TACO rows: no verifier, never scored). Contents are not meaningful reasoning."""
    probs = _jsonl(DATA_DIR / "math500.jsonl")
    rng = random.Random(seed)
    picked = rng.sample(probs, n_math)
    rows = []
    for i, p in enumerate(picked):
        steps = [s.strip() for s in p["problem"].replace("$", "").split(".") if s.strip()][:2]
        think = "\n\n".join([f"Let me read the problem: {steps[0]}."] + [f"Then: {s}." for s in steps[1:]]
                            + [f"So the answer is {p['answer']}."])
        rows.append({"id": f"mini-math-{i:04d}", "question_content": f"{BOXED} {p['problem']}",
                     "think_content": think, "solution_content": f"The answer is $\\boxed{{{p['answer']}}}$."})
    for i in range(n_code):
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        rows.append({"id": f"mini-code-{i:04d}",
                     "question_content": f"Read an integer n and print n * {a} + {b}.",
                     "think_content": f"Read n, multiply by {a}, add {b}, print it.",
                     "solution_content": f"```python\nn = int(input())\nprint(n * {a} + {b})\n```"})
    return rows


def corpus(rows: list[dict], prompts: list[str] = ()) -> list[str]:
    """The tokenizer's training text: every shipped benchmark problem and answer, the mini dataset, the markers and
    ``prompts`` (the profile's prompt templates: the system prompt every qwen3 prompt carries)."""
    texts = [" ".join(MARKERS)] * 50 + [t for t in prompts for _ in range(20)]
    for f in sorted(DATA_DIR.glob("*.jsonl")):
        texts += [f"{r['problem']}\n\n{r['answer']}" for r in _jsonl(f)]
    texts += ["\n\n".join(r[k] for k in ("question_content", "think_content", "solution_content")) for r in rows]
    return texts


def train_tokenizer(texts: list[str], vocab_size: int = MINI_VOCAB):
    """A ``Qwen2Tokenizer`` (transformers' class for Qwen3): byte-level BPE with Qwen2's normaliser and split
    regex, trained on ``texts``, then Qwen3's added tokens appended after the learnt entries."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=t not in NOT_SPECIAL, normalized=False) for t in QWEN3_ADDED])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   unk_token=None, bos_token=None, model_max_length=131072,
                                   clean_up_tokenization_spaces=False, split_special_tokens=False)
    fast.chat_template = CHATML
    return fast


def build_model(tokenizer, vocab_size: int, seed: int, dims: dict | None = None):
    """A random-init Qwen3ForCausalLM (fp32) with ``dims`` (default ``DIMS``) and Qwen3's config conventions."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    cfg = Qwen3Config(vocab_size=vocab_size, **(dims or DIMS), rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                      tie_word_embeddings=True, bos_token_id=eos, eos_token_id=eos, pad_token_id=None,
                      attention_bias=False, hidden_act="silu", initializer_range=0.02, use_cache=True)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(cfg)
    model.generation_config.update(bos_token_id=eos, eos_token_id=eos, max_new_tokens=2048, do_sample=False)
    return model


def format_rows(rows: list[dict]) -> list[str]:
    """Each row as a ChatML exchange in the Bespoke response format (method.md §8): ``<|im_start|>user ...
    <|im_start|>assistant\n<|begin_of_thought|>\n\n{think}<|end_of_thought|>\n\n<|begin_of_solution|>
    {solution}<|end_of_solution|>``. Without the Sky-T1 system prompt, which would triple the tokens."""
    return [f"<|im_start|>user\n{r['question_content']}<|im_end|>\n<|im_start|>assistant\n{MARKERS[0]}\n\n"
            f"{r['think_content']}{MARKERS[1]}\n\n{MARKERS[2]}{r['solution_content']}{MARKERS[3]}" for r in rows]


def pretrain(model, tokenizer, texts: list[str], steps: int, seed: int, batch_size: int = 16, lr: float = 3e-3):
    """Next-token training of ``model`` on ``texts`` for ``steps`` steps (fp32 master weights, AdamW, one torch
    thread, fixed batch order: the same bytes for the same seed on one machine). A base model has seen text
    before; this gives the miniature the Bespoke response format, so sampled traces close their thought and
    the scoring, rollout and grading steps downstream see real work instead of all-unfinished traces."""
    import torch

    if steps == 0:
        return model.eval().to(torch.bfloat16), float("nan")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model.float().train()
        ids = [tokenizer.encode(t, add_special_tokens=False) + [tokenizer.eos_token_id] for t in texts]
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        rng = random.Random(seed)
        for _ in range(steps):
            batch = rng.sample(ids, batch_size)
            width = max(map(len, batch))
            x = torch.full((len(batch), width), tokenizer.eos_token_id)
            labels = torch.full((len(batch), width), -100)
            for b, seq in enumerate(batch):
                x[b, : len(seq)] = labels[b, : len(seq)] = torch.tensor(seq)
            loss = model(input_ids=x, attention_mask=(labels != -100).long(), labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval().to(torch.bfloat16), float(loss.detach())


def save(model, tokenizer, out: Path) -> Path:
    """``save_pretrained`` both into ``out`` (replaced whole, through a temp dir)."""
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    cfg = json.loads((tmp / "tokenizer_config.json").read_text())
    cfg["tokenizer_class"] = "Qwen2Tokenizer"  # what Qwen3's tokenizer_config.json names
    (tmp / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _commit(payload: bytes) -> str:
    """A stand-in for a hub commit sha (40 hex chars), derived from the content."""
    return hashlib.sha1(payload).hexdigest()


def write_datasets_cache(cache: Path, repo_id: str, config: str, split: str, rows: list[dict]) -> Path:
    """Write ``rows`` into the ``datasets`` Arrow cache at ``cache`` as ``load_dataset(repo_id, config)`` leaves
    it after a download (``<ns>___<name>/<config>/0.0.0/<commit>/``), using ``datasets``' own json builder.
    Offline, ``load_dataset(repo_id, config, split=split)`` reads it back (its cache module factory)."""
    from datasets.naming import camelcase_to_snakecase
    from datasets.packaged_modules.json.json import Json

    ns, name = repo_id.split("/")
    payload = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
    final = cache / f"{ns}___{camelcase_to_snakecase(name)}" / config
    shutil.rmtree(final, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="vr-mini-ds-") as tmp:
        src = Path(tmp) / f"{split}.jsonl"
        src.write_bytes(payload)
        builder = Json(cache_dir=str(Path(tmp) / "cache"), dataset_name=camelcase_to_snakecase(name),
                       config_name=config, config_id=config, data_files={split: str(src)}, hash=_commit(payload))
        builder.info.description = NOTE
        builder.download_and_prepare()
        for lock in (Path(tmp) / "cache").rglob("*.lock"):
            lock.unlink()
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(tmp) / "cache" / camelcase_to_snakecase(name) / config), final)
    return final


def write_hub_files(hub_cache: Path, repo_id: str, files: dict[str, bytes], repo_type: str = "dataset") -> Path:
    """Put ``files`` in a hub file cache (``<type>s--<ns>--<name>/snapshots/<commit>/``, ``refs/main``), the
    layout ``huggingface_hub`` resolves offline (``try_to_load_from_cache``, ``hf_hub_download``)."""
    repo = hub_cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    commit = _commit(b"".join(files[k] for k in sorted(files)))
    shutil.rmtree(repo, ignore_errors=True)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name, data in files.items():
        (snap / name).write_bytes(data)
    return snap


def build_hf_home(hf_home: Path, rows: list[dict], suites_dir: Path) -> dict[str, str]:
    """The miniature's ``HF_HOME``: the Bespoke rows and the suite fixtures under their hub ids."""
    out = {BESPOKE_ID: str(write_datasets_cache(hf_home / "datasets", BESPOKE_ID, "default", "train", rows))}
    for fixture_id, (repo, config, split, fname) in SUITES.items():
        out[repo] = str(write_datasets_cache(hf_home / "datasets", repo, config, split, _jsonl(suites_dir / fname)))
    lcb = _jsonl(suites_dir / "livecodebench.jsonl")
    half = (len(lcb) + 1) // 2  # release_v2 = test.jsonl + test2.jsonl: split the fixture over both
    parts = {f: "".join(json.dumps(r) + "\n" for r in chunk).encode()
             for f, chunk in zip(LCB_FILES, (lcb[:half], lcb[half:]))}
    out[LCB_REPO] = str(write_hub_files(hf_home / "hub", LCB_REPO, parts))
    (hf_home / "README.md").write_text(f"# {NOTE}\n\nSet HF_HOME here to run the qwen3-mini profile offline.\n")
    return out


def build(out: str | Path = "mini", seed: int = 0, full_vocab: bool = False, pretrain_steps: int = PRETRAIN_STEPS,
          suites_dir: str | Path = ROOT / "tests" / "fixtures" / "suites",
          params: str | Path = ROOT / "params.yaml") -> dict[str, str]:
    """Write the miniature under ``out``; returns ``{what: path}``. The tokenizer also learns the qwen3-mini
    profile's prompt templates from ``params``."""
    from varreason.config import load_config

    p = load_config(params, "qwen3-mini").prompt
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = bespoke_rows(seed=seed)
    import torch

    tok = train_tokenizer(corpus(rows, [p.reasoner, p.posterior]))
    model, loss = pretrain(build_model(tok, len(tok), seed), tok, format_rows(rows), pretrain_steps, seed)
    made = {"model": str(save(model, tok, out / "qwen3-mini")), "pretrain_loss": round(loss, 4)}
    if full_vocab:  # random init only: the scoring benchmark needs the shapes, not the format
        made["model_full_vocab"] = str(save(build_model(tok, QWEN3_VOCAB, seed).to(torch.bfloat16), tok,
                                            out / f"qwen3-mini-vocab{QWEN3_VOCAB}"))
    made.update(build_hf_home(out / "hf", rows, Path(suites_dir)))
    return made


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m varreason.mini", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the miniature checkpoint(s) and HF_HOME")
    b.add_argument("--out", default="mini")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--vocab", choices=("mini", "full"), default="mini",
                   help="full: also the 151,936-row variant (scoring benchmark)")
    b.add_argument("--pretrain-steps", type=int, default=PRETRAIN_STEPS,
                   help="next-token steps on the mini rows before saving (0: the random init as is)")
    b.add_argument("--suites-dir", default=str(ROOT / "tests" / "fixtures" / "suites"))
    b.add_argument("--params", default=str(ROOT / "params.yaml"))
    a = p.parse_args(argv)
    made = build(a.out, a.seed, a.vocab == "full", a.pretrain_steps, a.suites_dir, a.params)
    print(json.dumps(made, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
