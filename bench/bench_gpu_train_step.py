"""One LoRA training step through ``pycomp.ops`` on models made from a config (no download).

The providers and the measurement are those of ``bench/bench_train_throughput.py``
(imported from it, so the two cannot drift), on randomly initialised
Llama-architecture models built from a ``transformers.LlamaConfig`` on the
device, so the run needs no model files and no network:

* ``smollm2-135m``: SmolLM2-135M's shape (vocabulary 49152, hidden 576, 30 layers);
* ``llama3.2-1b``: Llama-3.2-1B's shape (vocabulary 128256, hidden 2048, 16 layers),
  where the LM head is a larger share of the step;
* ``tiny`` (``--smoke``): vocabulary 1000, hidden 64, 2 layers.

LoRA adapters (``pycomp.train.model.add_lora``: rank 8, all linear layers but
the head) on a bfloat16 base on CUDA (float32 on CPU); one step is forward,
soft pair loss, backward and AdamW. Providers: ``pycomp``
(:class:`pycomp.train.objectives.PairObjective`, the fused Triton kernel on
CUDA), ``plain`` (the strong plain torch / peft baseline: the decoder, the
answer-position hidden state, the two head rows or the full head at one
position), ``liger`` (Liger-Kernel, when installed) and ``hf`` (full (B, T, V)
logits). Steps are interleaved (a Williams square), warm-up excluded; the
warm-up losses, at the same parameters, are compared across providers.

Results: ``<out>/gpu_train_step.{json,md}`` (default ``bench/results/gpu``).

Usage::

    python bench/bench_gpu_train_step.py                          # on a GPU machine
    python bench/bench_gpu_train_step.py --smoke --out /tmp/x     # tiny model on the CPU
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SHAPES = {
    "tiny": dict(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2),
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, rope_theta=100000.0),
    "llama3.2-1b": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                        num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0),
}
ANSWER_IDS = (330, 389)  # any two ids below every shape's vocabulary


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default=None,
                    help=f"comma list of {', '.join(SHAPES)} (default smollm2-135m,llama3.2-1b; --smoke: tiny)")
    ap.add_argument("--smoke", action="store_true", help="the tiny model, batch 2 x 16 tokens, 2 rounds")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--steps", type=int, default=8, help="timed rounds (one step of every provider each)")
    ap.add_argument("--normalize", nargs="+", default=["pair", "vocab"], choices=("pair", "vocab"))
    ap.add_argument("--providers", nargs="+", default=["pycomp", "plain", "liger", "hf"],
                    choices=("pycomp", "plain", "liger", "hf"))
    ap.add_argument("--head-repeats", type=int, default=10)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", default=str(HERE / "results" / "gpu"))
    args = ap.parse_args(argv)
    if args.smoke:
        args.batch, args.seq_len, args.steps, args.head_repeats = 2, 16, 2, 2
    args.shapes = (args.shapes or ("tiny" if args.smoke else "smollm2-135m,llama3.2-1b")).split(",")
    for s in args.shapes:
        if s not in SHAPES:
            ap.error(f"--shapes: unknown shape {s!r}; choose from {', '.join(SHAPES)}")
    return args


def build_model(shape: str, device, dtype, lora_r: int):
    """A randomly initialised LlamaForCausalLM of ``shape`` on ``device``, with LoRA adapters."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from pycomp.train.model import add_lora

    cfg = LlamaConfig(max_position_embeddings=2048, tie_word_embeddings=True, rms_norm_eps=1e-5,
                      **SHAPES[shape])
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(old)
    model = add_lora(model, r=lora_r, alpha=2 * lora_r, dropout=0.0, seed=0)
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model, n_params, n_train


def run_shape(args, shape: str, device, dtype) -> dict:
    """Measure every provider on one model shape (bench_train_throughput's protocol)."""
    import torch

    from bench_train_throughput import (head_only_ms, liger_status, make_providers, summarise, timed_step,
                                        williams_orders)
    from pycomp.ops import lm_head_weight, resolve_backend, triton_unavailable_reason
    from pycomp.train.objectives import ops_backend

    t0 = time.perf_counter()
    model, n_params, n_train = build_model(shape, device, dtype, args.lora_r)
    build_s = time.perf_counter() - t0
    V = SHAPES[shape]["vocab_size"]
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, V, (args.batch, args.seq_len), generator=g)
    mask = torch.ones_like(ids)
    batch = {"input_ids": ids.to(device), "attention_mask": mask.to(device),
             "position_ids": (mask.cumsum(1) - 1).to(device),
             "target": torch.linspace(0.1, 0.9, args.batch).to(device)}
    a, b = ANSWER_IDS
    fns, skipped = make_providers(args, device, a, b)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    model.train()
    warm_loss = {k: timed_step(fn, model, batch, opt, device, update=False)[1] for k, fn in fns.items()}
    times = {k: [] for k in fns}
    losses = {k: [] for k in fns}
    keys = list(fns)
    for rnd, perm in enumerate(williams_orders(len(keys), args.steps)):
        for key in (keys[i] for i in perm):
            dt, loss = timed_step(fns[key], model, batch, opt, device, update=True)
            times[key].append(dt)
            losses[key].append(loss)
        print(f"[{shape}] round {rnd + 1}/{args.steps}: "
              + ", ".join(f"{n}/{p} {1e3 * times[n, p][-1]:.1f} ms" for n, p in keys), flush=True)
    W = lm_head_weight(model)
    head = head_only_ms(args, device, W, a, b, batch["target"], liger_status(device)[0], args.head_repeats)
    probe = torch.empty(1, W.shape[1], device=device, dtype=W.dtype)
    backend = ops_backend("auto", device)
    resolved = resolve_backend(backend, probe)
    runs = summarise(args, times, losses, warm_loss, head, skipped, resolved)
    res = {"shape": shape, "config": SHAPES[shape], "params": n_params, "trainable_params": n_train,
           "build_s": build_s, "vocab": V, "hidden": int(W.shape[1]), "dtype": str(W.dtype),
           "pycomp_backend": resolved, "triton_unavailable_reason": triton_unavailable_reason(probe),
           "hf_logits_mib": args.batch * args.seq_len * V * 4 / 2**20, "runs": runs}
    if device.type == "cuda":
        res["max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    del model, opt, fns
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return res


def markdown(res: dict) -> str:
    lines = ["# LoRA training step through pycomp.ops (models made from a config)", "",
             f"Command: `{res['command']}`; commit {res['commit']}.",
             f"Device {res['device_name']}, base dtype {res['dtype']}, LoRA r={res['lora_r']}, batch {res['batch']} x "
             f"{res['seq_len']} tokens, {res['steps']} timed rounds (every provider one step per round, interleaved "
             "by a Williams square; warm-up excluded); torch " + res["torch"] + ".", ""]
    for s in res["shapes"]:
        lines += [f"## {s['shape']}: {s['params'] / 1e6:.1f}M parameters ({s['trainable_params'] / 1e6:.2f}M "
                  f"trainable), vocabulary {s['vocab']}, hidden {s['hidden']}", "",
                  f"pycomp loss backend: `{s['pycomp_backend']}`"
                  + (f" (Triton cannot run: {s['triton_unavailable_reason']})" if s["triton_unavailable_reason"]
                     else "") + f"; full logits would be {s['hf_logits_mib']:.0f} MiB of fp32 per step"
                  + (f"; peak allocated {s['max_memory_allocated_mib']:.0f} MiB" if "max_memory_allocated_mib" in s
                     else "") + ".", ""]
        for norm, run in s["runs"].items():
            lines += [f"normalize = {norm}:", "",
                      "| provider | loss path | examples/s | step median (p20-p80) ms | head loss fwd+bwd ms | "
                      "warm-up loss |", "|---|---|---|---|---|---|"]
            for r in run["rows"]:
                if r["status"] != "run":
                    lines.append(f"| {r['provider']} | {r['loss_path']} | {r['status']} | | | |")
                    continue
                head = f"{r['head_only_ms']:.2f}" if r["head_only_ms"] is not None else ""
                lines.append(f"| {r['provider']} | {r['loss_path']} | {r['examples_per_second']:.1f} | "
                             f"{1e3 * r['step_median_s']:.1f} ({1e3 * r['step_p20_s']:.1f}-"
                             f"{1e3 * r['step_p80_s']:.1f}) | {head} | {r['warmup_loss']:.6f} |")
            lines.append("")
            for key, v in run["ratios"].items():
                num, den = key.split("_over_")
                txt = f"{num} / {den} examples per second: {v['examples_per_second']:.2f}x"
                if "paired_round_median" in v:
                    txt += f" (median paired step-time ratio over rounds: {v['paired_round_median']:.2f}x)"
                lines.append(f"- {txt}.")
            if run["warmup_loss_max_abs_diff"] is not None:
                lines.append(f"- Warm-up losses (same parameters) agree to {run['warmup_loss_max_abs_diff']:.1e}.")
            lines.append("")
    if res["device"] == "cpu":
        lines += ["CPU run (smoke): the pycomp provider is the torch reference of pycomp.ops; no GPU figure."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from gpu_info import commit
    from utils import machine_info

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    res = {"command": "python bench/bench_gpu_train_step.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "commit": commit(), "machine": machine_info(), "device": device.type,
           "device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
           "dtype": str(dtype), "torch": torch.__version__, "lora_r": args.lora_r, "batch": args.batch,
           "seq_len": args.seq_len, "steps": args.steps, "normalize": args.normalize, "providers": args.providers,
           "shapes": []}
    try:
        import transformers

        res["transformers"] = transformers.__version__
    except ImportError:
        pass
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for shape in args.shapes:
        res["shapes"].append(run_shape(args, shape, device, dtype))
        (out / "gpu_train_step.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        (out / "gpu_train_step.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
