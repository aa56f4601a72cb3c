"""Benchmark of the fused head losses (pycomp.ops.pair_loss / score_loss).

On a CUDA GPU, for every op (pair loss with ``normalize="pair"`` / ``"vocab"``,
score loss with ``"scores"`` / ``"vocab"``), size (B, V; d = 4096) and dtype
(bfloat16), the forward + backward time and peak extra memory of four named
providers, measured in the same run:

* ``hf``: the default Hugging Face path: full (B, V) logits in the model dtype,
  upcast, ``log_softmax`` over the vocabulary (or over the answer / score
  columns for ``"pair"`` / ``"scores"``), as ``model(...).logits`` followed by
  a hand-written loss;
* ``eager``: eager torch done well, i.e. :mod:`pycomp.ops.reference`
  (gathered head rows for ``"pair"`` / ``"scores"``, ``torch.logsumexp``
  instead of a full ``log_softmax`` for ``"vocab"``), imported from the
  package so it cannot drift from what the tests check;
* ``compile``: ``torch.compile`` of ``eager``;
* ``pycomp``: the Triton kernels (``backend="triton"``).

Times are CUDA-event times of ``loss = f(hidden, weight); loss.backward()``
(warm-ups excluded; median, p20, p80). Peak extra memory is
``torch.cuda.max_memory_allocated()`` during one call minus the memory
allocated before it (the gradients included). ``read_head_x2_ms`` is twice
the measured time of one streaming read of the LM head (``weight.sum()``),
the target's yardstick. Every pycomp case is also checked against ``eager``.

Without a GPU the script runs the kernels under the Triton interpreter at
small sizes and writes **correctness figures only** (errors against the
float32 torch reference); no speed figure exists for a CPU run.

Results: ``bench/results/head_loss.{json,csv,md}`` (GPU) or
``bench/results/head_loss_interpreter.{json,md}`` (CPU), rows keyed by op,
provider, size, dtype, head, device and commit (see ``bench/utils.py``).

Usage::

    python bench/bench_head_loss.py                     # everything this machine can run
    python bench/bench_head_loss.py --B 64 --V 128256 --ops pair-vocab,score-vocab
    python bench/bench_head_loss.py --head trainable
    python bench/bench_head_loss.py --B 64 --V 128256 --tune   # try other tile choices
    python bench/bench_head_loss.py --dtype fp16 --out bench/results/gpu   # as bench/gpu_check.sh runs it
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the interpreter's small numpy matmuls

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when pycomp.ops defines its kernels

from utils import git_commit, machine_info, markdown_table, summarize_times, upsert_rows  # noqa: E402

from pycomp.ops import pair_loss, score_loss  # noqa: E402
from pycomp.ops._launch import set_kernel_overrides  # noqa: E402
from pycomp.ops.reference import pair_rows, score_rows  # noqa: E402

OPS = {
    # name: (loss family, normalize)
    "pair-pair": ("pair", "pair"),
    "pair-vocab": ("pair", "vocab"),
    "score-scores": ("score", "scores"),
    "score-vocab": ("score", "vocab"),
}
PROVIDERS = ("hf", "eager", "compile", "pycomp")
SCORE_K = 10  # score tokens "1".."10"
KEY = ("op", "provider", "B", "V", "d", "dtype", "head", "device", "commit")
# --tune: extra pycomp tile choices, each a provider "pycomp[bv=..,w=..,s=..]"
TUNE = [dict(block_v=bv, num_warps=w, num_stages=st) for bv in (64, 128, 256) for w in (4, 8)
        for st in (2, 3)]
RESULTS = HERE / "results"


# --------------------------------------------------------------------------- #
# problem and providers
# --------------------------------------------------------------------------- #
def make_problem(op, B, V, d, dtype, device, trainable, seed=0):
    """Inputs of one case: leaf hidden (B, d) and weight (V, d), ids, targets."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    # on a GPU the head is drawn there: a (128256, 4096) randn takes seconds on the CPU
    gh = g if torch.device(device).type == "cpu" else torch.Generator(device=device).manual_seed(seed)
    hidden = torch.randn(B, d, generator=gh, device=gh.device).to(device=device, dtype=dtype).requires_grad_(True)
    weight = (torch.randn(V, d, generator=gh, device=gh.device) * (3.0 / d**0.5)).to(device=device, dtype=dtype)
    weight.requires_grad_(trainable)
    family, normalize = OPS[op]
    p = dict(family=family, normalize=normalize, hidden=hidden, weight=weight)
    if family == "pair":
        a = torch.randint(0, V, (B,), generator=g)
        b = (a + 1 + torch.randint(0, V - 1, (B,), generator=g)) % V
        p.update(ids=torch.stack([a, b], 1).to(device), a=a.to(device), b=b.to(device),
                 target=torch.rand(B, generator=g).to(device))
    else:
        ids = torch.randperm(V, generator=g)[:SCORE_K]
        vals = torch.arange(1, SCORE_K + 1, dtype=torch.float32)
        p.update(score_ids=ids.to(device), score_values=vals.to(device),
                 target=(1 + 9 * torch.rand(B, generator=g)).to(device))
    return p


def hf_loss(p, h, w):
    """Default Hugging Face path: full logits in the model dtype, upcast, log_softmax."""
    logits = F.linear(h, w).float()  # what model(...).logits gives, then .float()
    if p["family"] == "pair":
        t = p["target"]
        cols = logits.gather(1, p["ids"])
        logp = torch.log_softmax(cols if p["normalize"] == "pair" else logits, dim=-1)
        if p["normalize"] == "vocab":
            logp = logp.gather(1, p["ids"])
        return -(t * logp[:, 0] + (1 - t) * logp[:, 1]).mean()
    cols = logits[:, p["score_ids"]]
    if p["normalize"] == "scores":
        prob = torch.softmax(cols, dim=-1)
    else:
        prob = torch.log_softmax(logits, dim=-1)[:, p["score_ids"]].exp()
    return ((prob @ p["score_values"] - p["target"]) ** 2).mean()


def eager_loss(p, h, w):
    """Eager torch done well: the package's reference without argument checks."""
    if p["family"] == "pair":
        rows = pair_rows(h, w, p["ids"], p["target"], p["normalize"], upcast=False)
    else:
        rows = score_rows(h, w, p["score_ids"], p["score_values"], p["target"], p["normalize"],
                          upcast=False)
    return rows.mean()


def pycomp_loss(p, h, w):
    """The fused Triton kernels through the public API (argument checks included)."""
    if p["family"] == "pair":
        return pair_loss(h, w, p["a"], p["b"], p["target"], normalize=p["normalize"],
                         backend="triton")
    return score_loss(h, w, p["score_ids"], p["score_values"], p["target"],
                      normalize=p["normalize"], backend="triton")


_COMPILED = {}


def reset_compiled():
    """Forget compiled graphs (called per case, so dynamo's recompile limit is never hit)."""
    _COMPILED.clear()
    torch._dynamo.reset()


def provider_fn(name, p):
    """Zero-argument closure running forward + backward for provider ``name``.

    ``pycomp[k=v,...]`` runs the kernels with tile overrides (see ``--tune``).
    """
    h, w = p["hidden"], p["weight"]
    if name.startswith("pycomp["):
        keys = {"bv": "block_v", "bb": "block_b", "bd": "block_d", "w": "num_warps",
                "s": "num_stages", "ppsm": "programs_per_sm"}
        over = {keys[k]: int(v) for k, v in (kv.split("=") for kv in name[7:-1].split(","))}

        def tuned():
            set_kernel_overrides(**over)
            try:
                h.grad = None
                w.grad = None
                loss = pycomp_loss(p, h, w)
                loss.backward()
                return loss
            finally:
                set_kernel_overrides()

        return tuned
    if name == "compile":
        key = (p["family"], p["normalize"])
        if key not in _COMPILED:
            _COMPILED[key] = torch.compile(eager_loss, dynamic=False)
        f = _COMPILED[key]
    else:
        f = {"hf": hf_loss, "eager": eager_loss, "pycomp": pycomp_loss}[name]

    def run():
        h.grad = None
        w.grad = None
        loss = f(p, h, w)
        loss.backward()
        return loss

    return run


# --------------------------------------------------------------------------- #
# GPU measurement
# --------------------------------------------------------------------------- #
def cuda_times(fn, warmup, repeats):
    """CUDA-event milliseconds of ``fn()`` after ``warmup`` discarded calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        out.append(start.elapsed_time(end))
    return out


def peak_extra_mb(fn, p):
    """Peak memory allocated during one ``fn()`` above what was allocated before (MiB).

    The gradients of the previous call are dropped first, so the new ones count.
    """
    p["hidden"].grad = None
    p["weight"].grad = None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def read_head_ms(weight, warmup=3, repeats=20):
    """Median time of one streaming read of ``weight`` (a float32-accumulated sum)."""
    ms = cuda_times(lambda: weight.detach().sum(dtype=torch.float32), warmup, repeats)
    return statistics.median(ms)


def max_rel_err(a, b):
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def run_gpu(args):
    device = torch.device("cuda")
    dev_name = f"cuda: {torch.cuda.get_device_name(device)}"
    commit = args.commit or git_commit()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    heads = ["frozen", "trainable"] if args.head == "both" else [args.head]
    providers = list(args.providers)
    if args.tune:
        providers += ["pycomp[bv={block_v},w={num_warps},s={num_stages}]".format(**c) for c in TUNE]
    rows = []
    for head in heads:
        for V in args.V:
            for B in args.B:
                for op in args.ops:
                    p = make_problem(op, B, V, args.d, dtype, device, head == "trainable")
                    reset_compiled()
                    two_reads = 2 * read_head_ms(p["weight"])
                    results = {}
                    for prov in providers:
                        row = dict(op=op, provider=prov, B=B, V=V, d=args.d, dtype=args.dtype,
                                   head=head, device=dev_name, commit=commit,
                                   read_head_x2_ms=round(two_reads, 4))
                        try:
                            fn = provider_fn(prov, p)
                            ms = cuda_times(fn, args.warmup, args.repeats)
                            s = summarize_times(ms)  # unit-agnostic: these are ms
                            row.update(status="ok", median_ms=round(s["median_s"], 4),
                                       p20_ms=round(s["p20_s"], 4), p80_ms=round(s["p80_s"], 4),
                                       peak_extra_mb=round(peak_extra_mb(fn, p), 1))
                            loss = fn()
                            results[prov] = (loss.detach().float(), p["hidden"].grad.detach().clone())
                        except torch.cuda.OutOfMemoryError:
                            row.update(status="OOM")
                        except Exception as exc:  # keep the other providers' figures
                            row.update(status=f"error: {type(exc).__name__}: {exc}"[:200])
                        finally:
                            p["hidden"].grad = None
                            p["weight"].grad = None
                            torch.cuda.empty_cache()
                        rows.append(row)
                        print(_fmt_row(row), flush=True)
                    _derive(rows[-len(providers):], results)
                    del p
                    torch.cuda.empty_cache()
    meta = dict(machine_info(), torch=torch.__version__, device=dev_name,
                note="GPU run: CUDA-event times, warm-ups excluded; peak = max_memory_allocated "
                     "minus memory allocated before the call")
    try:
        import triton

        meta["triton"] = triton.__version__
    except ImportError:
        pass
    all_rows = upsert_rows(RESULTS / "head_loss.json", rows, KEY, meta=meta,
                           csv_path=RESULTS / "head_loss.csv")
    write_markdown_gpu(all_rows, meta)


def _derive(case_rows, results):
    """Add speed-ups against eager, ratio to two head reads and errors against eager."""
    by = {r["provider"]: r for r in case_rows}
    eager = by.get("eager")
    for r in case_rows:
        if r.get("status") != "ok":
            continue
        if eager is not None and eager.get("status") == "ok":
            r["speedup_vs_eager"] = round(eager["median_ms"] / r["median_ms"], 3)
        r["x_read_head_x2"] = round(r["median_ms"] / r["read_head_x2_ms"], 3)
    if "pycomp" in results and "eager" in results:
        lp, gp = results["pycomp"]
        le, ge = results["eager"]
        by["pycomp"]["loss_rel_err_vs_eager"] = float(f"{max_rel_err(lp, le):.3g}")
        by["pycomp"]["grad_h_rel_err_vs_eager"] = float(f"{max_rel_err(gp, ge):.3g}")


def _fmt_row(r):
    if r.get("status") != "ok":
        return f"{r['op']:13s} {r['head']:9s} B={r['B']:<4d} V={r['V']:<7d} {r['provider']:8s} {r['status']}"
    return (f"{r['op']:13s} {r['head']:9s} B={r['B']:<4d} V={r['V']:<7d} {r['provider']:8s} "
            f"{r['median_ms']:9.3f} ms [{r['p20_ms']:.3f}, {r['p80_ms']:.3f}]  "
            f"peak +{r['peak_extra_mb']:.1f} MiB  (2 head reads: {r['read_head_x2_ms']:.3f} ms)")


def write_markdown_gpu(rows, meta):
    cols = [("op", "op"), ("head", "head"), ("B", "B"), ("V", "V"), ("d", "d"), ("dtype", "dtype"),
            ("provider", "provider"), ("median ms", "median_ms"), ("p20 ms", "p20_ms"),
            ("p80 ms", "p80_ms"), ("peak extra MiB", "peak_extra_mb"),
            ("x eager speed", "speedup_vs_eager"), ("time / 2 head reads", "x_read_head_x2"),
            ("status", "status"), ("device", "device"), ("commit", "commit")]
    rows = sorted(rows, key=lambda r: (r["device"], r["head"], r["op"], r["V"], r["B"],
                                       PROVIDERS.index(r["provider"]) if r["provider"] in PROVIDERS else 9,
                                       r["provider"]))
    text = [
        "# Fused head losses: forward + backward (GPU)",
        "",
        "Generated by `python bench/bench_head_loss.py`. Providers: `hf` (full logits + "
        "log_softmax), `eager` (pycomp.ops.reference: gathered rows / logsumexp), `compile` "
        "(torch.compile of eager), `pycomp` (Triton). Times are CUDA-event medians with p20/p80, "
        "warm-ups excluded. `time / 2 head reads` divides by twice the measured time to read the "
        "LM head once from HBM.",
        "",
        f"Machine: {meta.get('device')}, torch {meta.get('torch')}, triton {meta.get('triton')}.",
        "",
        markdown_table(rows, cols),
        "",
    ]
    (RESULTS / "head_loss.md").write_text("\n".join(text))


# --------------------------------------------------------------------------- #
# CPU: interpreter correctness only
# --------------------------------------------------------------------------- #
def run_interpreter_check(args):
    """Errors of the Triton kernels (interpreter) against the float32 reference, small sizes."""
    from pycomp.ops import pair_loss_reference, score_loss_reference

    commit = args.commit or git_commit()
    dev_name = "cpu: Triton interpreter (TRITON_INTERPRET=1)"
    rows = []
    sizes = [(1, 64, 1000), (8, 72, 32003)]
    for dtype_name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        for head in ("frozen", "trainable"):
            for (B, d, V) in sizes:
                for op in args.ops:
                    p = make_problem(op, B, V, d, dtype, "cpu", head == "trainable", seed=1)
                    h, w = p["hidden"], p["weight"]
                    family, normalize = OPS[op]
                    if family == "pair":
                        ref_f = lambda h, w: pair_loss_reference(  # noqa: E731
                            h, w, p["a"], p["b"], p["target"], normalize=normalize)
                    else:
                        ref_f = lambda h, w: score_loss_reference(  # noqa: E731
                            h, w, p["score_ids"], p["score_values"], p["target"], normalize=normalize)
                    got = _loss_grads(lambda h, w: pycomp_loss(p, h, w), h, w)
                    ref = _loss_grads(ref_f, h, w)
                    row = dict(op=op, provider="pycomp-interpreter", B=B, V=V, d=d, dtype=dtype_name,
                               head=head, device=dev_name, commit=commit,
                               loss_abs_err=float(f"{abs(float(got[0]) - float(ref[0])):.3g}"),
                               grad_h_rel_err=float(f"{max_rel_err(got[1], ref[1]):.3g}"))
                    if head == "trainable":
                        row["grad_w_rel_err"] = float(f"{max_rel_err(got[2], ref[2]):.3g}")
                    rows.append(row)
                    print(f"{op:13s} {head:9s} {dtype_name} B={B:<3d} d={d} V={V:<6d} "
                          f"loss err {row['loss_abs_err']:.3g}  grad_h rel err {row['grad_h_rel_err']:.3g}"
                          + (f"  grad_w rel err {row['grad_w_rel_err']:.3g}" if head == "trainable" else ""),
                          flush=True)
    meta = dict(machine_info(), torch=torch.__version__, device=dev_name,
                note="No GPU: Triton-interpreter correctness only. No speed figure exists for "
                     "this run; the interpreter's run time says nothing about GPU speed.")
    all_rows = upsert_rows(RESULTS / "head_loss_interpreter.json", rows, KEY, meta=meta)
    cols = [("op", "op"), ("head", "head"), ("B", "B"), ("d", "d"), ("V", "V"), ("dtype", "dtype"),
            ("abs err loss", "loss_abs_err"), ("max rel err grad hidden", "grad_h_rel_err"),
            ("max rel err grad weight", "grad_w_rel_err"), ("commit", "commit")]
    text = [
        "# Fused head losses: Triton-interpreter correctness (no GPU)",
        "",
        "**No speed figure exists here.** This run had no GPU, so the Triton kernels ran under "
        "`TRITON_INTERPRET=1` on the CPU and were only checked against the float32 torch "
        "reference (`pycomp.ops.reference`) on the same inputs. Errors: absolute for the "
        "mean loss, max |error| / max |reference| for the gradients. Run "
        "`python bench/bench_head_loss.py` on a CUDA machine for times and memory.",
        "",
        markdown_table(sorted(all_rows, key=lambda r: (r["dtype"], r["head"], r["op"], r["V"], r["B"])), cols),
        "",
    ]
    (RESULTS / "head_loss_interpreter.md").write_text("\n".join(text))


def _loss_grads(f, h, w):
    h.grad = None
    w.grad = None
    loss = f(h, w)
    loss.backward()
    return loss.detach(), h.grad.clone(), (w.grad.clone() if w.grad is not None else None)


# --------------------------------------------------------------------------- #
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    ap.add_argument("--B", type=ints, default=[8, 64, 512], help="batch sizes (comma list)")
    ap.add_argument("--V", type=ints, default=[32000, 128256], help="vocabulary sizes (comma list)")
    ap.add_argument("--d", type=int, default=4096, help="hidden size")
    ap.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], default="bf16")
    ap.add_argument("--ops", type=lambda s: s.split(","), default=list(OPS),
                    help=f"comma list of {', '.join(OPS)}")
    ap.add_argument("--providers", type=lambda s: s.split(","), default=list(PROVIDERS),
                    help=f"comma list of {', '.join(PROVIDERS)}")
    ap.add_argument("--head", choices=["frozen", "trainable", "both"], default="frozen",
                    help="LM head frozen (QLoRA) or trainable")
    ap.add_argument("--tune", action="store_true",
                    help="also time pycomp with other tile choices (block_v, warps, stages)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default=str(RESULTS), help="folder of the results files (default bench/results)")
    ap.add_argument("--commit", help="commit recorded in the rows (default: git rev-parse --short HEAD)")
    args = ap.parse_args(argv)
    for o in args.ops:
        if o not in OPS:
            ap.error(f"--ops: unknown op {o!r}; choose from {', '.join(OPS)}")
    for pr in args.providers:
        if pr not in PROVIDERS:
            ap.error(f"--providers: unknown provider {pr!r}; choose from {', '.join(PROVIDERS)}")
    return args


def main(argv=None):
    global RESULTS
    args = parse_args(argv)
    RESULTS = Path(args.out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if HAS_CUDA:
        run_gpu(args)
    else:
        print("No CUDA device: running the Triton-interpreter correctness check only "
              "(small sizes). No speed figure exists for this run.", flush=True)
        run_interpreter_check(args)
    print(f"done in {time.time() - t0:.1f} s; results under {RESULTS}", flush=True)


if __name__ == "__main__":
    main()
