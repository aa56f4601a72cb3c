"""Training throughput of a judge: pycomp's fused head loss vs the plain Hugging Face loss.

One LoRA training step (forward, loss, backward, AdamW) of SmolLM2-135M on a
batch of pair prompts, for two named providers measured in the same run,
steps interleaved (A B A B ...) so that load on a shared machine hits both:

* ``pycomp``: :class:`pycomp.train.objectives.PairObjective` with
  ``loss_backend="auto"``: the decoder's answer-position hidden states
  (:func:`pycomp.ops.gather_answer_hidden`) and :func:`pycomp.ops.pair_loss`:
  the fused Triton kernel on CUDA; **on CPU its torch reference** (the Triton
  interpreter is far too slow to train with), which reads two rows of the LM
  head instead of forming logits;
* ``hf``: the same objective with ``loss_backend="hf"``: ``model(...)``
  computes the (B, T, V) logits of every position, as a plain Hugging Face
  training step does, and the loss is taken from the answer row.

The figure is examples per second (batch size / median step time, warm-up
step excluded), with the p20-p80 range; the loss values of both providers are
checked to agree. Head-only times (the loss and its backward on the final
hidden states, no decoder) are reported beside them.

Results: ``bench/results/train_throughput.{json,md}``. On a CPU machine the
numbers are CPU numbers (the pycomp provider is the torch reference there);
no GPU figure is produced without a GPU.

Usage::

    python bench/bench_train_throughput.py                  # B=4, T=224 (SummEval pair prompts), 4 steps each
    python bench/bench_train_throughput.py --batch 8 --seq-len 512 --steps 6 --threads 2
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=224, help="Prompt tokens (SummEval pair prompts: mean 226).")
    ap.add_argument("--steps", type=int, default=4, help="Timed steps per provider (after one warm-up).")
    ap.add_argument("--normalize", default="pair", choices=("pair", "vocab"))
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results" / "train_throughput"))
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from utils import git_commit, machine_info

    from pycomp.train.model import add_lora, load_base_model
    from pycomp.train.objectives import PairObjective, ops_backend

    model, tok, info = load_base_model(None, device="auto", quantization="auto")
    model = add_lora(model, r=args.lora_r, alpha=2 * args.lora_r, dropout=0.0, seed=0)
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 40000, (args.batch, args.seq_len), generator=g)
    mask = torch.ones_like(ids)
    batch = {"input_ids": ids.to(device), "attention_mask": mask.to(device),
             "position_ids": (mask.cumsum(1) - 1).to(device),
             "target": torch.linspace(0.1, 0.9, args.batch).to(device)}
    a, b = 330, 389
    providers = {"pycomp": PairObjective(a, b, args.normalize, backend="auto"),
                 "hf": PairObjective(a, b, args.normalize, backend="hf")}
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-6)
    model.train()

    def step(obj):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        loss, _ = obj(model, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t, float(loss.detach())

    times = {k: [] for k in providers}
    losses = {k: [] for k in providers}
    for name, obj in providers.items():  # warm-up
        step(obj)
    for _ in range(args.steps):
        for name, obj in providers.items():
            dt, loss = step(obj)
            times[name].append(dt)
            losses[name].append(loss)

    # head only: loss + backward on final hidden states (no decoder)
    from pycomp.ops import lm_head_weight, pair_loss

    W = lm_head_weight(model)
    d = W.shape[1]
    h_last = torch.randn(args.batch, d, device=device, dtype=W.dtype, requires_grad=True)
    h_all = torch.randn(args.batch, args.seq_len, d, device=device, dtype=W.dtype, requires_grad=True)
    tgt = batch["target"]

    def head_pycomp():
        pair_loss(h_last, W, a, b, tgt, normalize=args.normalize,
                  backend=ops_backend("auto", device)).backward()

    def head_hf():
        logits = (h_all @ W.T)[:, -1, :].float()
        if args.normalize == "vocab":
            lp = torch.log_softmax(logits, -1)
            loss = -(tgt * lp[:, a] + (1 - tgt) * lp[:, b]).mean()
        else:
            dl = logits[:, a] - logits[:, b]
            loss = (tgt * torch.nn.functional.softplus(-dl) + (1 - tgt) * torch.nn.functional.softplus(dl)).mean()
        loss.backward()

    head = {}
    for name, fn in (("pycomp", head_pycomp), ("hf", head_hf)):
        fn()
        ts = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        head[name] = statistics.median(ts)

    def q(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]

    rows = []
    for name in providers:
        med = statistics.median(times[name])
        rows.append({
            "provider": name,
            "loss_path": ("pycomp.ops " + ops_backend("auto", device) + " backend") if name == "pycomp"
            else "HF full (B, T, V) logits",
            "examples_per_second": args.batch / med, "step_median_s": med,
            "step_p20_s": q(times[name], 0.2), "step_p80_s": q(times[name], 0.8),
            "head_only_ms": 1000 * head[name], "mean_loss": statistics.mean(losses[name]),
        })
    speedup = rows[0]["examples_per_second"] / rows[1]["examples_per_second"]
    res = {
        "device": str(device), "dtype": str(W.dtype), "model": info.get("identity"), "batch": args.batch,
        "seq_len": args.seq_len, "normalize": args.normalize, "lora_r": args.lora_r, "steps": args.steps,
        "threads": args.threads, "vocab": int(W.shape[0]), "hidden": int(d),
        "hf_logits_mib": args.batch * args.seq_len * W.shape[0] * 4 / 2**20,
        "speedup_pycomp_over_hf": speedup, "rows": rows, "commit": git_commit(), "machine": machine_info(),
        "times": times,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    lines = [f"# Training throughput: SmolLM2-135M + LoRA r={args.lora_r}, pair loss ({args.normalize})", "",
             f"Device {device} ({res['dtype']}), {args.threads} torch thread(s), batch {args.batch} x "
             f"{args.seq_len} tokens, {args.steps} timed steps each (interleaved, warm-up excluded); "
             f"commit {res['commit']}.", "",
             "| provider | loss path | examples/s | step median (p20-p80) s | head loss fwd+bwd ms |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['provider']} | {r['loss_path']} | {r['examples_per_second']:.3f} | "
                     f"{r['step_median_s']:.2f} ({r['step_p20_s']:.2f}-{r['step_p80_s']:.2f}) | "
                     f"{r['head_only_ms']:.1f} |")
    lines += ["", f"pycomp / hf examples per second: {speedup:.2f}x. The HF path forms {res['hf_logits_mib']:.0f} MiB "
              f"of fp32 logits per step."]
    if device.type == "cpu":
        lines += ["", "CPU run: the pycomp provider is the torch reference of pycomp.ops (no Triton GPU path on "
                      "CPU); no GPU figure was measured."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
