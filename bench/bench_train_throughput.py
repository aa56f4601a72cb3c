"""Training throughput of a judge: pycomp's head loss vs a strong plain baseline, Liger-Kernel and full logits.

One LoRA training step (forward, loss, backward, AdamW) of SmolLM2-135M on a
batch of pair prompts, for each provider and each normalisation of the pair
loss, all measured in the same run with their steps interleaved (one step of
every provider per round, the orders a Williams Latin square: each provider
in each place and after each other provider equally often) so that load on a
shared machine, and the cost a step pays for the one before it, hit all of
them alike:

* ``pycomp``: :class:`pycomp.train.objectives.PairObjective` with
  ``loss_backend="auto"``: the decoder's answer-position hidden states
  (:func:`pycomp.ops.gather_answer_hidden`) and :func:`pycomp.ops.pair_loss`:
  the fused Triton kernel on CUDA, **its torch reference on CPU** (the Triton
  interpreter is far too slow to train with).
* ``plain`` (the strong baseline, the headline comparison): what a competent
  user writes in plain torch without pycomp. The decoder alone runs, the hidden
  state of the answer position (the last real token) is kept, and the loss is
  taken there: ``normalize="pair"`` multiplies it by the two answer-token rows
  of the LM head and takes the soft binary cross-entropy of ``z_A - z_B``;
  ``normalize="vocab"`` applies the full head at that one position and takes the
  soft cross-entropy of ``log_softmax`` on the two answer tokens. (This is
  ``model(..., logits_to_keep=1)`` of transformers, with the two-row head for
  the pair case.)
* ``liger`` (``normalize="vocab"`` only): Liger-Kernel's fused linear
  cross-entropy (``liger_kernel.transformers.functional.liger_fused_linear_cross_entropy``)
  on the same answer-position hidden states. Its soft two-token target is
  written as two hard-label rows per example, ``t * CE(A) + (1 - t) * CE(B)``.
  Triton on CUDA only: on a CPU machine the row says "not run: needs a CUDA
  GPU". Optional dependency: ``pip install "liger-kernel>=0.8.5"``.
* ``hf``: the same objective with ``loss_backend="hf"``: ``model(...)``
  computes the (B, T, V) logits of every position, as the Hugging Face default
  training step does, and the loss is taken from the answer row.

The figure is examples per second (batch size / median step time over the
timed rounds, warm-up excluded), with the p20-p80 range, and the median over
rounds of the paired step-time ratio (same round, so the same load). The
warm-up round takes no optimizer step, so every provider's warm-up loss is at
the same parameters and they are checked to agree. Head-only times (the loss
and its backward on final hidden states, no decoder) are reported beside them.

Results: ``bench/results/train_throughput.{json,md}``, with the commit and the
files that differed from it. On a CPU machine the numbers are CPU numbers: the
pycomp provider is then the torch reference, which computes the same thing as
the plain baseline, so the two should be equal within noise.

Usage::

    OMP_NUM_THREADS=1 python bench/bench_train_throughput.py          # pair and vocab, B=4, T=224, 6 timed rounds
    python bench/bench_train_throughput.py --normalize vocab --batch 8 --seq-len 512 --steps 6 --threads 2
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

LIGER_REQUIREMENT = "liger-kernel>=0.8.5"
PROVIDERS = ("pycomp", "plain", "liger", "hf")
LOSS_PATHS = {
    "pycomp": "pycomp.ops pair_loss on the answer-position hidden states ({backend} backend)",
    "plain": {"pair": "plain torch: answer-position hidden states x the 2 answer rows of the head, soft BCE",
              "vocab": "plain torch: answer-position hidden states x the full head (1 position), "
                       "log_softmax, soft CE"},
    "liger": "Liger-Kernel fused linear cross-entropy on the answer-position hidden states",
    "hf": "Hugging Face model(...): full (B, T, V) logits, loss on the answer row",
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=224, help="Prompt tokens (SummEval pair prompts: mean 226).")
    ap.add_argument("--steps", type=int, default=6, help="Timed rounds (one step of every provider each), "
                                                         "after one warm-up round; the number of providers "
                                                         "(twice that if odd) balances the order.")
    ap.add_argument("--normalize", nargs="+", default=["pair", "vocab"], choices=("pair", "vocab"))
    ap.add_argument("--providers", nargs="+", default=list(PROVIDERS), choices=PROVIDERS,
                    help="liger is measured for normalize=vocab only.")
    ap.add_argument("--head-repeats", type=int, default=5, help="Timed repeats of each head-only loss.")
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results" / "train_throughput"))
    return ap.parse_args(argv)


# --------------------------------------------------------------------------
# the plain-torch and Liger losses (written without pycomp)
# --------------------------------------------------------------------------


def answer_hidden(model, batch):
    """Final-norm hidden state of each row's last real token (B, d) and the LM head weight (V, d).

    Runs only the decoder of the (PEFT-wrapped) causal LM, so no logits are formed.
    """
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    out = base.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     position_ids=batch["position_ids"], use_cache=False)
    mask = batch["attention_mask"]
    last = mask.shape[1] - 1 - mask.flip(1).argmax(1)
    hidden = out.last_hidden_state[torch.arange(mask.shape[0], device=mask.device), last]
    return hidden, base.get_output_embeddings().weight


def soft_pair_loss(logits, ia, ib, target, normalize):
    """Mean soft pair loss from logits whose columns ``ia`` and ``ib`` are the two answers.

    ``"pair"``: binary cross-entropy of ``sig(z_A - z_B)``; ``"vocab"``: cross-entropy of
    ``log_softmax`` over all columns on the two answers, weighted ``t`` and ``1 - t``.
    """
    import torch.nn.functional as F

    t = target.float()
    logits = logits.float()
    if normalize == "pair":
        delta = logits[:, ia] - logits[:, ib]
        return (t * F.softplus(-delta) + (1 - t) * F.softplus(delta)).mean()
    logp = F.log_softmax(logits, dim=-1)
    return -(t * logp[:, ia] + (1 - t) * logp[:, ib]).mean()


def plain_head_loss(hidden, weight, a, b, target, normalize):
    """Soft pair loss from answer-position hidden states: two head rows (pair) or the full head (vocab)."""
    if normalize == "pair":
        return soft_pair_loss(hidden @ weight[[a, b]].T, 0, 1, target, normalize)
    return soft_pair_loss(hidden @ weight.T, a, b, target, normalize)


def liger_status(device) -> tuple:
    """``(loss function or None, reason it cannot run)`` for Liger-Kernel on ``device``."""
    if device.type != "cuda":
        return None, "not run: needs a CUDA GPU"
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError as exc:
        return None, f"not run: liger-kernel not importable ({exc}); pip install \"{LIGER_REQUIREMENT}\""
    return liger_fused_linear_cross_entropy, ""


def liger_head_loss(flce, hidden, weight, a, b, target):
    """``mean_b [t CE(h_b, A) + (1 - t) CE(h_b, B)]`` by Liger's fused linear cross-entropy."""
    import torch

    B = hidden.shape[0]
    labels = torch.tensor([a] * B + [b] * B, device=hidden.device)
    t = target.float()
    rows = flce(torch.cat([hidden, hidden]), weight, labels, reduction="none")
    return (torch.cat([t, 1 - t]) * rows.float()).sum() / B


# --------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------


def make_providers(args, device, a, b):
    """``{(normalize, provider): objective(model, batch) -> loss}`` and ``{provider: reason not run}``."""
    from pycomp.train.objectives import PairObjective

    flce, liger_reason = liger_status(device)
    fns, skipped = {}, {}
    for norm in args.normalize:
        for name in args.providers:
            if name == "pycomp":
                obj = PairObjective(a, b, norm, backend="auto")
                fns[norm, name] = lambda m, bt, obj=obj: obj(m, bt)[0]
            elif name == "hf":
                obj = PairObjective(a, b, norm, backend="hf")
                fns[norm, name] = lambda m, bt, obj=obj: obj(m, bt)[0]
            elif name == "plain":
                fns[norm, name] = lambda m, bt, norm=norm: plain_head_loss(*answer_hidden(m, bt), a, b,
                                                                           bt["target"], norm)
            elif norm == "vocab":  # liger
                if flce is None:
                    skipped[norm, name] = liger_reason
                else:
                    fns[norm, name] = lambda m, bt: liger_head_loss(flce, *answer_hidden(m, bt), a, b,
                                                                    bt["target"])
    return fns, skipped


def williams_orders(n: int, rounds: int) -> list:
    """Orders of ``n`` providers for ``rounds`` rounds, balanced for position and for predecessor.

    A Williams Latin square: over ``n`` rounds (``2 n`` for odd ``n``) every
    provider takes every place equally often and follows every other provider
    equally often. A step pays for the one before it (the full-logits step
    frees 168 MiB of logits and their gradient), so a fixed or merely rotated
    order would charge that to the same provider every round.

    Returns
    -------
    list of list of int
        One permutation of ``range(n)`` per round, the square's rows repeated as needed.
    """
    base, lo, hi = [0], 1, n - 1
    while len(base) < n:
        base.append(lo)
        lo += 1
        if len(base) < n:
            base.append(hi)
            hi -= 1
    rows = [[(x + r) % n for x in base] for r in range(n)]
    if n % 2:
        rows += [row[::-1] for row in rows]
    return [rows[i % len(rows)] for i in range(rounds)]


def timed_step(fn, model, batch, opt, device, update: bool):
    """Seconds and loss of one training step (no optimizer update when ``update`` is false)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    loss = fn(model, batch)
    loss.backward()
    if update:
        opt.step()
    opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, float(loss.detach())


def head_only_ms(args, device, weight, a, b, target, flce, repeats: int) -> dict:
    """Median ms of the loss + backward on random final hidden states, per (normalize, provider)."""
    import torch

    from pycomp.ops import pair_loss
    from pycomp.train.objectives import ops_backend

    d = weight.shape[1]
    g = torch.Generator(device="cpu").manual_seed(1)
    h_last = torch.randn(args.batch, d, generator=g).to(device, weight.dtype).requires_grad_(True)
    h_all = torch.randn(args.batch, args.seq_len, d, generator=g).to(device, weight.dtype).requires_grad_(True)

    def hf(norm):
        return soft_pair_loss((h_all @ weight.T)[:, -1, :], a, b, target, norm)

    fns = {
        "pycomp": lambda norm: pair_loss(h_last, weight, a, b, target, normalize=norm,
                                         backend=ops_backend("auto", device)),
        "plain": lambda norm: plain_head_loss(h_last, weight, a, b, target, norm),
        "liger": lambda norm: liger_head_loss(flce, h_last, weight, a, b, target),
        "hf": hf,
    }
    out = {}
    for norm in args.normalize:
        for name in args.providers:
            if name == "liger" and (norm != "vocab" or flce is None):
                continue
            ts = []
            for i in range(repeats + 1):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                fns[name](norm).backward()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i:  # the first call warms up
                    ts.append(time.perf_counter() - t0)
            h_last.grad = h_all.grad = None
            out[norm, name] = 1000 * statistics.median(ts)
    return out


def quantile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def summarise(args, times, losses, warm_loss, head, skipped, backend_name):
    """Result rows per normalisation, with ratios against the plain baseline and the full-logits path."""
    runs = {}
    for norm in args.normalize:
        rows = []
        for name in args.providers:
            key = (norm, name)
            if name == "liger" and norm != "vocab":
                continue
            path = LOSS_PATHS[name]
            path = path[norm] if isinstance(path, dict) else path.format(backend=backend_name)
            if key in skipped:
                rows.append({"provider": name, "loss_path": path, "status": skipped[key]})
                continue
            med = statistics.median(times[key])
            rows.append({
                "provider": name, "loss_path": path, "status": "run",
                "examples_per_second": args.batch / med, "step_median_s": med,
                "step_p20_s": quantile(times[key], 0.2), "step_p80_s": quantile(times[key], 0.8),
                "head_only_ms": head.get(key), "warmup_loss": warm_loss[key],
                "mean_loss": statistics.mean(losses[key]), "step_times_s": times[key],
            })
        ran = {r["provider"]: r for r in rows if r["status"] == "run"}
        ratios = {}
        for ref in ("plain", "hf", "liger"):
            if "pycomp" in ran and ref in ran:
                paired = [tr / tp for tp, tr in zip(times[norm, "pycomp"], times[norm, ref])]
                ratios[f"pycomp_over_{ref}"] = {
                    "examples_per_second": ran["pycomp"]["examples_per_second"] / ran[ref]["examples_per_second"],
                    "paired_round_median": statistics.median(paired),
                }
        if "plain" in ran and "hf" in ran:
            ratios["plain_over_hf"] = {
                "examples_per_second": ran["plain"]["examples_per_second"] / ran["hf"]["examples_per_second"]}
        warm = [r["warmup_loss"] for r in ran.values()]
        runs[norm] = {"rows": rows, "ratios": ratios,
                      "warmup_loss_max_abs_diff": max(warm) - min(warm) if warm else None}
    return runs


def markdown(res) -> str:
    a = res
    lines = [f"# Training throughput: SmolLM2-135M + LoRA r={a['lora_r']}, soft pair loss", "",
             f"Device {a['device']} ({a['dtype']}), {a['threads']} torch thread(s), batch {a['batch']} x "
             f"{a['seq_len']} tokens, {a['steps']} timed rounds (every provider one step per round, "
             f"interleaved, orders from a Williams square; warm-up round excluded); commit {a['commit']}"
             + (f" (files changed from it: {', '.join(a['changed_files'])})" if a["changed_files"] else "")
             + f"; load average at the start {a['machine'].get('loadavg_1m')}.", ""]
    for norm, run in a["runs"].items():
        lines += [f"## normalize = {norm}", "",
                  "| provider | loss path | examples/s | step median (p20-p80) s | head loss fwd+bwd ms | "
                  "warm-up loss |", "|---|---|---|---|---|---|"]
        for r in run["rows"]:
            if r["status"] != "run":
                lines.append(f"| {r['provider']} | {r['loss_path']} | {r['status']} | | | |")
                continue
            head = f"{r['head_only_ms']:.1f}" if r["head_only_ms"] is not None else ""
            lines.append(f"| {r['provider']} | {r['loss_path']} | {r['examples_per_second']:.3f} | "
                         f"{r['step_median_s']:.2f} ({r['step_p20_s']:.2f}-{r['step_p80_s']:.2f}) | {head} | "
                         f"{r['warmup_loss']:.6f} |")
        lines.append("")
        for key, v in run["ratios"].items():
            num, den = key.split("_over_")
            txt = f"{num} / {den} examples per second: {v['examples_per_second']:.2f}x"
            if "paired_round_median" in v:
                txt += f" (median over rounds of the paired step-time ratio: {v['paired_round_median']:.2f}x)"
            lines.append(f"- {txt}.")
        if run["warmup_loss_max_abs_diff"] is not None:
            lines.append(f"- Warm-up losses (same parameters) agree to {run['warmup_loss_max_abs_diff']:.1e}.")
        lines.append("")
    lines.append(f"The full-logits path forms {a['hf_logits_mib']:.0f} MiB of fp32 logits per step.")
    if a["device"] == "cpu":
        lines += ["", "CPU run: the pycomp provider is the torch reference of pycomp.ops (no Triton GPU path on "
                      "CPU), the same computation as the plain baseline; Liger-Kernel needs a CUDA GPU; no GPU "
                      "figure was measured."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from utils import git_changed_files, git_commit, machine_info

    from pycomp.ops import lm_head_weight
    from pycomp.train.model import add_lora, load_base_model
    from pycomp.train.objectives import ops_backend

    machine = machine_info()
    commit, changed = git_commit(), git_changed_files("pycomp", "bench")  # the code measured, taken at the start
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
    fns, skipped = make_providers(args, device, a, b)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    model.train()

    warm_loss = {k: timed_step(fn, model, batch, opt, device, update=False)[1] for k, fn in fns.items()}
    times = {k: [] for k in fns}
    losses = {k: [] for k in fns}
    keys = list(fns)
    orders = []
    for rnd, perm in enumerate(williams_orders(len(keys), args.steps)):
        order = [keys[i] for i in perm]
        orders.append(["/".join(k) for k in order])
        for key in order:
            dt, loss = timed_step(fns[key], model, batch, opt, device, update=True)
            times[key].append(dt)
            losses[key].append(loss)
        print(f"round {rnd + 1}/{args.steps}: " + ", ".join(f"{n}/{p} {times[n, p][-1]:.1f}s" for n, p in order),
              flush=True)

    W = lm_head_weight(model)
    flce = liger_status(device)[0]
    head = head_only_ms(args, device, W, a, b, batch["target"], flce, args.head_repeats)
    backend_name = ops_backend("auto", device)
    res = {
        "device": str(device), "dtype": str(W.dtype), "model": info.get("identity"), "batch": args.batch,
        "seq_len": args.seq_len, "normalize": args.normalize, "providers": args.providers,
        "lora_r": args.lora_r, "steps": args.steps, "threads": args.threads,
        "vocab": int(W.shape[0]), "hidden": int(W.shape[1]),
        "hf_logits_mib": args.batch * args.seq_len * W.shape[0] * 4 / 2**20,
        "torch": torch.__version__, "commit": commit, "changed_files": changed,
        "machine": machine,
        "command": "python bench/bench_train_throughput.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "round_orders": orders,
        "runs": summarise(args, times, losses, warm_loss, head, skipped, backend_name),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    text = markdown(res)
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
