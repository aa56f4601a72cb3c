"""Judge throughput: pycomp's batched judge against a plain one-prompt-at-a-time loop.

Providers (``--providers``, comma-separated, default all):

======================  =========================================================
``pycomp``              ``pycomp.judge.judge_pairs`` (what ``pycomp rank`` runs):
                        batches grouped by context and first item, longest
                        first, left padding, ``logits_to_keep=1``, the batch's
                        shared token prefix run once and its keys/values reused,
                        results appended to a JSONL file
``pycomp-noshare``      the same without shared-prefix reuse
``plain-loop``          one prompt at a time: tokenizer -> model(...) -> full
                        logits of every position -> softmax at the last one
                        (what a straightforward script does)
======================  =========================================================

Workloads (``--workloads``):

``reviews``   the built-in example's prompts (short: one-sentence movie reviews, ~75 tokens)
``summeval``  within-article pairs of the first SummEval article with the article as
              context (long: ~650 tokens, of which ~500 are the shared article)

Every provider judges the same prompts and must give the same p(A) to 1e-3
(checked). Throughput is prompts per second (each prompt is one ordered
comparison; a pair judged in both orders is two). Rows are upserted into
``<out>/judge.json`` / ``judge.csv`` keyed by (op, provider, workload, device,
commit) with median and p20/p80 over ``--repeats`` timed runs after one warm-up
batch, and ``<out>/judge.md`` is regenerated.

Example::

    python bench/bench_judge.py                       # ~10 min on 2 busy CPU cores
    python bench/bench_judge.py --workloads reviews --repeats 5
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

# Passive OpenMP waiting: spinning threads make torch several times slower on a busy CPU.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from utils import device_name, git_commit, load_rows, machine_info, markdown_table, summarize_times, upsert_rows  # noqa: E402

SUMMEVAL = REPO.parent / "shared" / "data" / "summeval" / "summeval.jsonl"
PROVIDERS = ("pycomp", "pycomp-noshare", "plain-loop")


def workload_items(workload: str, n_prompts: int):
    """(texts, pairs, contexts, settings) of a workload, with n_prompts // 2 pairs."""
    from pycomp import examples
    from pycomp.judge.run import PromptSettings
    from pycomp.plan import all_pairs, random_pairs

    if workload == "reviews":
        frame, cfg = examples.load("reviews")
        pairs = random_pairs(len(frame), 6, seed=0)
        return frame["text"].tolist(), pairs[: n_prompts // 2], None, PromptSettings(cfg["attribute"], cfg["noun"])
    if workload == "summeval":
        frame = pd.read_json(SUMMEVAL, lines=True)
        frame = frame[frame["article_id"] == frame["article_id"].iloc[0]].reset_index(drop=True)
        pairs = all_pairs(len(frame))
        rng = np.random.default_rng(0)
        pairs = pairs[np.sort(rng.permutation(len(pairs))[: n_prompts // 2])]
        settings = PromptSettings(attribute="more coherent", noun="summary", context_noun="Article")
        return frame["summary"].tolist(), pairs, frame["article"].tolist(), settings
    raise ValueError(f"unknown workload {workload!r}")


def run_pycomp(backend, work, batch_size: int, share: bool) -> np.ndarray:
    """The product path: judge_pairs (batching, both orders, resumable file) on a fresh file."""
    from pycomp.judge.prompts import PairTemplate
    from pycomp.judge.run import judge_pairs

    texts, pairs, contexts, settings = work
    backend.share_prefix = share
    with tempfile.TemporaryDirectory() as tmp:
        res = judge_pairs(backend, PairTemplate(), texts, pairs, out=Path(tmp) / "j.jsonl", contexts=contexts,
                          settings=settings, batch_size=batch_size, progress=False)
    out = np.empty(2 * len(pairs))
    out[0::2], out[1::2] = res.comparisons["p_ab"], res.comparisons["p_ba"]
    return out


def plain_prompts(backend, work):
    from pycomp.judge.prompts import PairTemplate
    from pycomp.judge.run import build_prompts

    texts, pairs, contexts, settings = work
    return build_prompts(backend, PairTemplate(), texts, pairs, settings, contexts)


def run_plain(backend, prompts) -> np.ndarray:
    import torch

    model, tok = backend.model, backend.tokenizer
    a, b = backend.label_ids
    out = np.empty(len(prompts))
    with torch.no_grad():
        for k, prompt in enumerate(prompts):
            enc = tok(prompt, return_tensors="pt", add_special_tokens=False).to(backend.device)
            logits = model(**enc).logits[0, -1]
            probs = torch.softmax(logits.float(), dim=-1)
            pa, pb = probs[a].sum(), probs[b].sum()
            out[k] = float(pa / (pa + pb))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--providers", default=",".join(PROVIDERS))
    ap.add_argument("--workloads", default="reviews,summeval")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prompts", default="reviews=64,summeval=32", help="Prompts per workload.")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)

    import torch

    from pycomp.judge.transformers_backend import TransformersBackend

    providers = [p for p in args.providers.split(",") if p]
    for p in providers:
        if p not in PROVIDERS:
            raise SystemExit(f"unknown provider {p!r}; choose from {PROVIDERS}")
    counts = dict(item.split("=") for item in args.prompts.split(","))
    t0 = time.perf_counter()
    backend = TransformersBackend.load(args.model, device=args.device)
    load_s = time.perf_counter() - t0
    dev = str(backend.device)
    device = device_name("cpu") if dev == "cpu" else f"cuda: {torch.cuda.get_device_name(0)}"
    commit = git_commit(REPO)
    rows = []
    for workload in [w for w in args.workloads.split(",") if w]:
        work = workload_items(workload, int(counts.get(workload, 32)))
        prompts = plain_prompts(backend, work)
        lengths = [len(x) for x in backend.tokenizer(prompts, add_special_tokens=False)["input_ids"]]
        reference = None
        for provider in providers:
            def once():
                if provider == "plain-loop":
                    return run_plain(backend, prompts)
                return run_pycomp(backend, work, args.batch_size, share=(provider == "pycomp"))

            # Warm-up: a few prompts.
            if provider == "plain-loop":
                run_plain(backend, prompts[:1])
            else:
                warm = (work[0], work[1][:2], work[2], work[3])
                run_pycomp(backend, warm, args.batch_size, share=(provider == "pycomp"))
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                p = once()
                times.append(time.perf_counter() - start)
            if reference is None:
                reference = p
            diff = float(np.max(np.abs(p - reference)))
            assert diff < 1e-3, f"{provider} disagrees with {providers[0]} by {diff}"
            stats = summarize_times(times)
            row = {
                "op": "judge", "provider": provider, "workload": workload, "device": device, "commit": commit,
                "n_prompts": len(prompts), "mean_tokens": float(np.mean(lengths)), "batch_size": args.batch_size,
                "repeats": args.repeats, **stats,
                "prompts_per_s": len(prompts) / stats["median_s"],
                "prompts_per_s_p20": len(prompts) / stats["p80_s"], "prompts_per_s_p80": len(prompts) / stats["p20_s"],
                "max_abs_diff_p": diff, "torch_threads": torch.get_num_threads(),
            }
            rows.append(row)
            print(f"{workload:9s} {provider:15s} {row['prompts_per_s']:7.2f} prompts/s "
                  f"(p20-p80 {row['prompts_per_s_p20']:.2f}-{row['prompts_per_s_p80']:.2f}), "
                  f"{row['mean_tokens']:.0f} tokens/prompt, max |dp| {diff:.1e}", flush=True)
        base = next((r for r in rows if r["workload"] == workload and r["provider"] == "plain-loop"), None)
        if base is not None:
            for r in rows:
                if r["workload"] == workload:
                    r["speedup_vs_plain_loop"] = r["prompts_per_s"] / base["prompts_per_s"]

    meta = {"machine": machine_info(), "model": args.model, "load_seconds": load_s,
            "command": "python bench/bench_judge.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    args.out.mkdir(parents=True, exist_ok=True)
    all_rows = upsert_rows(args.out / "judge.json", rows, ("op", "provider", "workload", "device", "commit"),
                           meta=meta, csv_path=args.out / "judge.csv")
    shown = []
    for r in all_rows:
        shown.append({**r, "rate": f"{r['prompts_per_s']:.2f}",
                      "range": f"{r['prompts_per_s_p20']:.2f}-{r['prompts_per_s_p80']:.2f}",
                      "tokens": f"{r['mean_tokens']:.0f}",
                      "speedup": f"{r.get('speedup_vs_plain_loop', float('nan')):.2f}x"})
    md = [f"# Judge throughput ({args.model})", "",
          "Prompts per second (one prompt = one ordered comparison), median over repeats; "
          f"load average at the end {meta['machine'].get('loadavg_1m')} (a busy machine lowers every row alike).", "",
          markdown_table(shown, [("workload", "workload"), ("provider", "provider"), ("device", "device"),
                                 ("tokens/prompt", "tokens"), ("prompts/s", "rate"), ("p20-p80", "range"),
                                 ("vs plain loop", "speedup"), ("batch", "batch_size"), ("commit", "commit")]),
          "", f"Command: `{meta['command']}`", ""]
    (args.out / "judge.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
