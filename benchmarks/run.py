"""``make bench``: run every benchmark, write ``benchmarks/results.json`` and ``benchmarks/results.md``.

    python -m benchmarks.run [--quick] [--threads T] [--only scoring sampling ...] [--out-dir benchmarks]
                             [--cache-profile tiny --cache-set em.rounds=1 ...] [--merge]

``--quick`` shrinks every size (harness check, numbers meaningless). Torch runs with ``--threads`` intra-op
threads (default 1) on both sides of every comparison: on a shared 2-core machine two threads per process
oversubscribe the cores and made the tiny model up to 5x slower in our runs; use ``--threads 2`` on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, fixture, machine

ALL = ("scoring", "sampling", "vllm", "training", "cache", "scaling")
SIZES = {  # full run: ~7 min on 2 quiet cores (23 min at load 7); quick: harness check only
    "full": {"score_n": 300, "score_rep": 5, "vocab_n": 48, "vocab_rep": 3, "samp_prompts": 32, "samp_rep": 3, "train_steps": 20, "train_rep": 3,
             "big_hidden": 512, "cache_sets": (), "cache_warm": 4, "scale_full": False},
    "quick": {"score_n": 16, "score_rep": 2, "vocab_n": 4, "vocab_rep": 1, "samp_prompts": 2, "samp_rep": 2, "train_steps": 2, "train_rep": 2,
              "big_hidden": 128, "cache_sets": None, "cache_warm": 1, "scale_full": False},
}


def run(only=ALL, quick: bool = False, threads: int = 1, fixture_root: str | None = None,
        cache_profile: str = "smoke", cache_sets: tuple[str, ...] | None = None) -> dict:
    import torch

    torch.set_num_threads(threads)
    from benchmarks.cache import bench_cache
    from benchmarks.sampling import bench_sampling, bench_vllm
    from benchmarks.scaling import bench_scaling, grid
    from benchmarks.scoring import bench_scoring, bench_scoring_vocab
    from benchmarks.training import bench_training, bench_training_big, matmul_peak

    sz = SIZES["quick" if quick else "full"]
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")  # 1-min load: others' jobs
    t0 = time.perf_counter()
    fixture_steps = 20 if quick else 150
    fx = fixture(fixture_root, fixture_steps)
    rows: dict[str, dict] = {}
    timings = {"fixture": time.perf_counter() - t0}

    def step(name, fn):
        if name.removesuffix("_big").removesuffix("_vocab") in only:
            t = time.perf_counter()
            try:
                rows[name] = fn()
            except Exception as exc:  # noqa: BLE001 - one broken benchmark is reported, the others still run
                rows[name] = {"metric": name, "status": f"failed: {type(exc).__name__}: {str(exc)[:300]}"}
            timings[name] = time.perf_counter() - t
            print(f"[bench] {name}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)

    peak = matmul_peak(512 if quick else 1024) if {"scoring", "training"} & set(only) else None
    step("scoring", lambda: bench_scoring(fx, sz["score_n"], sz["score_rep"], peak))
    step("scoring_vocab", lambda: bench_scoring_vocab(Path(fx.root) / "mini", sz["vocab_n"], sz["vocab_rep"]))
    step("sampling", lambda: bench_sampling(fx, sz["samp_prompts"], sz["samp_rep"]))
    step("vllm", lambda: bench_vllm(fx, sz["samp_prompts"], sz["samp_rep"]))
    if "training" in only:
        step("training", lambda: bench_training(fx, sz["train_steps"], sz["train_rep"], peak))
        best = rows.get("training", {}).get("mfu", {}).get("peak", peak)  # the best peak seen so far
        step("training_big", lambda: bench_training_big(fx, sz["big_hidden"], peak=best,
                                                        **({"steps": 1, "repeats": 1} if quick else {})))
    sets = sz["cache_sets"] if cache_sets is None else tuple(cache_sets)
    if sets is not None:
        step("cache", lambda: bench_cache(cache_profile, sets, sz["cache_warm"], threads))
    step("scaling", lambda: bench_scaling(grid(ns=(64, 128, 256, 512), ks=(1, 2, 4, 8), k_fixed=4, n_fixed=128,
                                               full=sz["scale_full"]) if not quick else [(8, 1), (8, 2), (16, 1)],
                                          threads, k_fixed=4 if not quick else 1, fixture_root=fx.root,
                                          fixture_steps=fixture_steps))
    timings["total"] = time.perf_counter() - t0
    load = {"load_start": load_start, "load_end": os.getloadavg()[0]} if hasattr(os, "getloadavg") else {}
    return {"machine": {**machine(), "torch_threads": threads, **load}, "quick": quick, "results": rows,
            "bench_wall_s": timings, "command": "make bench"}


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def _cell(s: dict, fmt=_fmt_rate) -> str:
    return f"{fmt(s['median'])} [{fmt(s['min'])}–{fmt(s['max'])}]"


def markdown(res: dict) -> str:
    m, r = res["machine"], res["results"]
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    yes = lambda ok: "—" if ok is None else ("yes" if ok else "**no**")  # noqa: E731
    lines = ["| metric | ours | naive | ratio (median [min–max] of paired repeats) | target | met? | repeats |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {x['metric']} | {x['status']} | | | | **no** | |" for x in r.values()
              if str(x.get("status", "")).startswith("failed")]
    r = {k: x for k, x in r.items() if not str(x.get("status", "")).startswith("failed")}
    for key in ("scoring", "sampling", "training"):
        if key in r:
            x = r[key]
            lines.append(f"| {x['metric']} | {_cell(x['ours'])} | {_cell(x['naive'])} | "
                         f"{x['ratio']:.2f}x [{x['ratio_spread']['min']:.2f}–{x['ratio_spread']['max']:.2f}] | "
                         f"{x['target']} | {yes(x['met'])} | {x['ours']['n']} |")
    if "scoring_vocab" in r:
        x = r["scoring_vocab"]
        lines.append(f"| {x['metric']}, {x['sequences']} sequences ({x['target_tokens']} of "
                     f"{x['tokens_per_call']} tokens scored) | {_cell(x['ours'])} | {_cell(x['naive'])} | "
                     f"{x['ratio']:.2f}x [{x['ratio_spread']['min']:.2f}–{x['ratio_spread']['max']:.2f}] | "
                     f"{x['target']} | {yes(x['met'])} | {x['ours']['n']} |")
    if "scoring" in r:
        x = r["scoring"]["ours_2048_tokens_per_batch"]
        lines.append(f"| scoring, ours at 2048 instead of 16384 padded tokens per forward (info) | {_cell(x['ours'])} | "
                     f"{_cell(x['naive'])} | {x['ratio']:.2f}x [{x['ratio_spread']['min']:.2f}–"
                     f"{x['ratio_spread']['max']:.2f}] | info | — | {x['ours']['n']} |")
    if "scoring" in r and "roofline" in r["scoring"]:
        x = r["scoring"]["roofline"]
        lines.append(f"| scoring ceiling: any scorer at 100% of the fp32 matmul peak (2·N = "
                     f"{x['flop_per_token'] / 1e6:.2f} MFLOP/token), vs naive (info) | "
                     f"{_fmt_rate(x['ceiling_tokens_per_s'])} (ours at {pct(x['ours_fraction_of_peak'])}, at 2048: "
                     f"{pct(x['ours_2048_fraction_of_peak'])}) | naive at {pct(x['naive_fraction_of_peak'])} | "
                     f"{x['ceiling_ratio']:.2f}x | info | — | |")
    if "vllm" in r:
        x = r["vllm"]
        if x.get("status") == "run":
            lines.append(f"| {x['metric']} | {_cell(x['ours'])} | {_cell(x['naive'])} (HF) | {x['ratio']:.2f}x | "
                         f"info | — | {x['ours']['n']} |")
        else:
            lines.append(f"| {x['metric']} | {x['status']} | | | info | — | |")
    for key in ("training", "training_big"):
        if key in r and (key == "training_big" or "mfu" in r[key]):
            x = r[key]["mfu"] if key == "training" else r[key]
            lines.append(f"| {x['metric']} | {x['achieved_flops'] / 1e9:.1f} GFLOP/s | peak "
                         f"{x['peak']['best_flops'] / 1e9:.1f} GFLOP/s | {pct(x['fraction'])} | {x['target']} | "
                         f"{yes(x['met'])} | {r['training']['ours']['n'] if key == 'training' else x['tokens_per_s']['n']} |")
    if "cache" in r:
        x = r["cache"]
        over = f" {' '.join(x['overrides'])}" if x["overrides"] else ""
        lines.append(f"| cache: re-run / cold (`{x['profile']}`{over}) | "
                     f"{x['warm_s']['median']:.1f} s [{x['warm_s']['min']:.1f}–{x['warm_s']['max']:.1f}] | "
                     f"cold {x['cold_s']:.1f} s | {pct(x['fraction'])} | {x['target']} | {yes(x['met'])} | "
                     f"{x['warm_s']['n']} |")
        if "warm_net_s" in x:
            lines.append(f"| cache: re-run less the Prefect client's retry sleeps on SQLite-busy 503s (info; "
                         f"{x['warm_backoff_s']['median']:.1f} s [{x['warm_backoff_s']['min']:.1f}–"
                         f"{x['warm_backoff_s']['max']:.1f}] per re-run) | {x['warm_net_s']['median']:.1f} s "
                         f"[{x['warm_net_s']['min']:.1f}–{x['warm_net_s']['max']:.1f}] | "
                         f"cold {x['cold_s']:.1f} s | {pct(x['net_fraction'])} | info | — | {x['warm_s']['n']} |")
        if "edit_s" in x:
            lines.append(f"| cache: re-run after a comment edit of every `varreason/` module / cold | "
                         f"{x['edit_s']:.1f} s | cold {x['cold_s']:.1f} s | {pct(x['edit_fraction'])} | <= 5% | "
                         f"{yes(x['edit_met'])} | 1 |")
        lines.append(f"| cache: CLI re-run (`python -m flows.vr_em`, info: + interpreter, imports, Prefect server "
                     f"start) | {x['cli_rerun_s']:.1f} s | cold {x['cold_s']:.1f} s + import {x['import_s']:.1f} s | "
                     f"{pct(x['cli_fraction'])} | info | — | 1 |")
    if "scaling" in r:
        x = r["scaling"]
        lines.append(f"| scaling: round s vs N·K | {1000 * x['fit']['slope']:.1f} ms/trace + "
                     f"{x['fit']['intercept']:.1f} s | | R² {x['fit']['r2']:.3f} | {x['target']} | {yes(x['met'])} | "
                     f"{len(x['points'])} points |")
    head = (f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores), torch {m['torch']} with {m['torch_threads']} "
            f"intra-op thread(s), Python {m['python']}; command `{res['command']}`"
            f"{' --quick (sizes too small to mean anything)' if res['quick'] else ''}; "
            f"whole run {res['bench_wall_s']['total'] / 60:.1f} min"
            + (f", load average {m['load_start']:.1f} at start and {m['load_end']:.1f} at end" if "load_end" in m
               else "") + ". Ours and naive run back to back in one process on the same model and data, so their "
            "ratio holds under other load on the machine; absolute numbers do not. Cells: median [min–max] over "
            "repeats.")
    if res.get("merged"):
        head += " Rows added later with `--merge`: " + "; ".join(
            f"{k} ({v['date']}, torch {v['torch']})" for k, v in sorted(res["merged"].items())) + "."
    out = [head, "", *lines]
    if "scaling" in r:
        x = r["scaling"]
        out += ["", "Scaling points (one fresh process each; round = sample + score + weigh + build set + train):", "",
                "| N | K | traces | round s | sample | score | weigh | build-set | train | peak RSS MB | RSS before "
                "round MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for p in x["points"]:
            s = p["stages_s"]
            out.append(f"| {p['N']} | {p['K']} | {p['traces']} | {p['round_s']:.2f} | {s['sample']:.2f} | "
                       f"{s['score']:.2f} | {s['weigh']:.2f} | {s['build-set']:.2f} | {s['train']:.2f} | "
                       f"{p['peak_rss_mb']:.0f} | {p['rss_before_mb']:.0f} |")
        if x["rss_fit_vs_N"]:
            f = x["rss_fit_vs_N"]
            out += ["", f"Peak RSS vs N at K={x['rss_k_fixed']}: {f['slope']:.3f} MB per question "
                        f"(intercept {f['intercept']:.0f} MB, R² {f['r2']:.2f})."]
    return "\n".join(out) + "\n"


def merge(old: dict, new: dict) -> dict:
    """``old`` with the rows of ``new`` replacing its rows of the same name; the header keeps ``old``'s machine
    and date, and ``merged`` records when and with which torch each new row was measured."""
    rows = {**old["results"], **new["results"]}
    merged = {**old.get("merged", {}), **{k: {"date": new["machine"]["date"], "torch": new["machine"]["torch"]}
                                          for k in new["results"]}}
    return {**old, "results": rows, "merged": merged}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", nargs="+", choices=ALL, default=list(ALL))
    p.add_argument("--out-dir", default=str(ROOT / "benchmarks"))
    p.add_argument("--cache-profile", default="smoke",
                   help="profile of the cache benchmark's run (`tiny`: the demo run, ~10-20 min cold here)")
    p.add_argument("--cache-set", action="append", default=None, metavar="KEY=VALUE",
                   help="override for the cache benchmark's run, as the flow's --set (repeatable)")
    p.add_argument("--merge", action="store_true",
                   help="keep the other rows of an existing results.json (e.g. `--only vllm --merge` from the vLLM "
                        "venv adds the vLLM row to a `make bench` run)")
    a = p.parse_args(argv)
    res = run(a.only, a.quick, a.threads, cache_profile=a.cache_profile, cache_sets=a.cache_set)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if a.merge and (out / "results.json").exists():
        res = merge(json.loads((out / "results.json").read_text()), res)
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    md = markdown(res)
    (out / "results.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
