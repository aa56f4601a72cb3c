"""The judgement cache's own cost: what it adds to a judging run, and what a re-run pays instead of judging.

Operations, on N synthetic rendered prompts (``--prompt-chars`` characters each, as
SummEval prompts with the article):

=====================  ===========================================================
``log-append``         baseline: the per-run JSONL log a run writes anyway, one
                       fsynced append per batch of ``--batch`` records
``cache-put``          the cache's writes of a judging run: one SQLite
                       transaction per batch (digest + label log-probabilities)
``log-load``           baseline: reading the JSONL log back (what resuming in
                       the same folder costs)
``cache-get``          a re-run elsewhere: SHA-256 of every prompt and one
                       lookup per 500 prompts
=====================  ===========================================================

The judge itself is not involved: its cost per prompt is in ``bench_judge.py``
(about 0.2-1 s per prompt on 2 CPU cores for SmolLM2-135M), against which these
figures are the overhead. Rows are upserted into ``<out>/cache.json`` keyed by
(op, n, device, commit); ``<out>/cache.md`` is regenerated.

    python bench/bench_cache.py                       # N = 10k and 100k, ~1 min
    python bench/bench_cache.py --sizes 1m --repeats 1
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from utils import (  # noqa: E402
    device_name, format_count, git_commit, machine_info, markdown_table, parse_count, summarize_times, upsert_rows,
)

from pycomp.judge.cache import JudgementCache, prompt_digest  # noqa: E402
from pycomp.judge.run import JudgementLog, _prompt_key  # noqa: E402

FP = {"backend": "transformers", "model": "bench@0000", "adapter": None, "dtype": "float32",
      "label_ids": [[1], [2]]}


def _prompts(n: int, chars: int, seed: int):
    rng = np.random.default_rng(seed)
    article = "".join(rng.choice(list("abcdefghij klmnopqrstuvwxyz"), size=chars))
    return [f"{article}\n\nSummary A: {k}\nSummary B: {k + 1}\nWhich is better?" for k in range(n)]


def _run_once(n: int, chars: int, batch: int, folder: Path) -> dict:
    prompts = _prompts(n, chars, seed=n)
    logp = -np.random.default_rng(1).exponential(size=(n, 2))
    out = {}

    log = JudgementLog(folder / "j.jsonl", {"format": "bench/1", "model": FP})
    log.load()
    t0 = time.perf_counter()
    for s in range(0, n, batch):
        log.append([{"key": _prompt_key(prompts[k]), "logp_a": float(logp[k, 0]), "logp_b": float(logp[k, 1])}
                    for k in range(s, min(n, s + batch))])
    out["log-append"] = time.perf_counter() - t0

    cache = JudgementCache(folder / "cache")
    t0 = time.perf_counter()
    for s in range(0, n, batch):
        cache.put(FP, [(prompt_digest(prompts[k]), logp[k]) for k in range(s, min(n, s + batch))], labels=("A", "B"))
    out["cache-put"] = time.perf_counter() - t0
    cache.close()

    t0 = time.perf_counter()
    done = JudgementLog(folder / "j.jsonl", {"format": "bench/1", "model": FP}).load()
    out["log-load"] = time.perf_counter() - t0
    assert len(done) == n

    cache = JudgementCache(folder / "cache")
    t0 = time.perf_counter()
    found = cache.get(FP, 2, [prompt_digest(p) for p in prompts])
    out["cache-get"] = time.perf_counter() - t0
    assert len(found) == n
    out["cache-bytes"] = cache.size_bytes()
    cache.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10k,100k", help="Numbers of prompts, comma-separated (10k, 1m, ...).")
    ap.add_argument("--prompt-chars", type=int, default=2500, help="Characters per prompt.")
    ap.add_argument("--batch", type=int, default=16, help="Prompts per judged batch (one write each).")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", default=None, help="Scratch folder (default: a temporary one).")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args(argv)

    commit = git_commit()
    rows = []
    for n in [parse_count(x) for x in args.sizes.split(",")]:
        runs = []
        for _ in range(args.repeats):
            scratch = Path(tempfile.mkdtemp(prefix="pycomp-bench-cache-", dir=args.dir))
            try:
                runs.append(_run_once(n, args.prompt_chars, args.batch, scratch))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        for op in ("log-append", "cache-put", "log-load", "cache-get"):
            t = summarize_times([r[op] for r in runs])
            rows.append({"op": op, "n": n, "n_label": format_count(n), "batch": args.batch,
                         "prompt_chars": args.prompt_chars, "device": device_name(), "commit": commit,
                         **t, "us_per_prompt": round(1e6 * t["median_s"] / n, 2),
                         "cache_mib": round(runs[-1]["cache-bytes"] / 2**20, 1)})
            print(f"{op:11s} n={format_count(n):>5s}  {t['median_s']:.3f} s  ({rows[-1]['us_per_prompt']} us/prompt)",
                  flush=True)
    out = Path(args.out)
    merged = upsert_rows(out / "cache.json", rows, ("op", "n", "device", "commit"),
                         meta={"machine": machine_info(), "command": " ".join(["python", *sys.argv])})
    write_markdown(merged, out / "cache.md")
    return 0


def write_markdown(rows, path: Path) -> None:
    """``cache.md``: one line per (op, prompts), times rounded to the millisecond."""
    shown = [dict(r, median_s=round(r["median_s"], 3)) for r in rows]
    table = markdown_table(shown, [("op", "op"), ("prompts", "n_label"), ("batch", "batch"),
                                   ("median s", "median_s"), ("us/prompt", "us_per_prompt"),
                                   ("cache MiB", "cache_mib"), ("device", "device"), ("commit", "commit")])
    path.write_text("# Judgement cache overhead (bench/bench_cache.py)\n\n" + table + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
