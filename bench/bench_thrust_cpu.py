"""device="thrust" against device="cpu" on this CPU: the cost of running the CUDA
backend's Thrust source through Thrust's OpenMP system.

device="thrust" is the test path of the GPU code, not a performance path; this records
how much slower it is than the CPU backend (a ratio), and how a skewed graph (few
items, many comparisons each) fares on the by-item layout with segmented reductions.

Rows (same run, same arrays, alternating the two devices, median of ``--repeats``):

=================  ==========================================================
``cpu``            ``pycomp.solve(device="cpu")`` (the OpenMP backend)
``thrust``         ``pycomp.solve(device="thrust")`` (Thrust, OpenMP system)
=================  ==========================================================

Examples
--------
::

    OMP_WAIT_POLICY=PASSIVE python bench/bench_thrust_cpu.py
    python bench/bench_thrust_cpu.py --sizes 100k/1M,100/1M --methods newton,mm --repeats 3

Writes ``bench/results/thrust_cpu.json`` and ``thrust_cpu.md`` (``--out`` to change).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import pycomp

HERE = Path(__file__).resolve().parent


def _count(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def make_comparisons(n_items: int, m: int, seed: int = 0):
    """Hard outcomes from a BT model with N(0, 1.5) scores; a spanning path keeps it connected."""
    rng = np.random.default_rng(seed)
    true = rng.normal(0.0, 1.5, n_items)
    i = rng.integers(0, n_items, m)
    j = (i + rng.integers(1, n_items, m)) % n_items
    perm = rng.permutation(n_items)
    i = np.concatenate([perm[:-1], i]).astype(np.int32)
    j = np.concatenate([perm[1:], j]).astype(np.int32)
    p = (rng.random(i.size) < 1.0 / (1.0 + np.exp(-(true[i] - true[j])))).astype(np.float64)
    return i, j, p


def run(sizes, methods, repeats, alpha, tol):
    rows = []
    for size in sizes:
        n_text, m_text = size.split("/")
        n, m = _count(n_text), _count(m_text)
        i, j, p = make_comparisons(n, m)
        for method in methods:
            times = {"cpu": [], "thrust": []}
            sols = {}
            for rep in range(repeats + 1):  # the first round warms up
                for device in ("cpu", "thrust"):
                    t0 = time.perf_counter()
                    sol = pycomp.solve(i, j, p, n_items=n, alpha=alpha, tol=tol, method=method, device=device,
                                       max_iter=100_000)
                    elapsed = time.perf_counter() - t0
                    if rep > 0:
                        times[device].append(elapsed)
                    sols[device] = sol
            diff = float(np.max(np.abs(sols["cpu"].scores - sols["thrust"].scores)))
            for device in ("cpu", "thrust"):
                s = sols[device]
                rows.append(dict(size=size, n_items=n, comparisons=int(i.size), method=method, device=device,
                                 median_s=statistics.median(times[device]), runs=times[device],
                                 n_iter=s.n_iter, n_inner=s.n_inner, converged=bool(s.converged),
                                 grad_norm=s.grad_norm, max_abs_diff_vs_cpu=diff))
            cpu_t = statistics.median(times["cpu"])
            thr_t = statistics.median(times["thrust"])
            print(f"{size:>10} {method:>7}: cpu {cpu_t * 1e3:9.1f} ms  thrust {thr_t * 1e3:9.1f} ms  "
                  f"ratio {thr_t / cpu_t:5.2f}  max|diff| {diff:.1e}", flush=True)
    return rows


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              check=True).stdout.strip()
    except Exception:
        return "unknown"


def write(rows, out: Path, args) -> None:
    out.mkdir(parents=True, exist_ok=True)
    info = pycomp.build_info()
    meta = dict(command=" ".join([Path(sys.executable).name] + sys.argv), commit=_commit(),
                machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                omp_num_threads=os.environ.get("OMP_NUM_THREADS", ""), thrust_version=info.get("thrust_version", ""),
                cpu_kernels=info.get("cpu_kernels", ""), alpha=args.alpha, tol=args.tol, repeats=args.repeats)
    (out / "thrust_cpu.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    lines = ["# device=\"thrust\" vs device=\"cpu\" on the CPU", "",
             f"`{meta['command']}` at {meta['commit']}, {meta['cpus']} CPUs, {meta['thrust_version']}, "
             f"alpha={args.alpha}, tol={args.tol}, median of {args.repeats} (after one warm-up), hard outcomes.", "",
             "| size (items/comparisons) | method | cpu (ms) | thrust (ms) | thrust / cpu | iterations (cpu, thrust) "
             "| max abs diff |", "|---|---|---|---|---|---|---|"]
    by_key = {}
    for r in rows:
        by_key.setdefault((r["size"], r["method"]), {})[r["device"]] = r
    for (size, method), d in by_key.items():
        c, t = d["cpu"], d["thrust"]
        lines.append(f"| {size} | {method} | {c['median_s'] * 1e3:.1f} | {t['median_s'] * 1e3:.1f} | "
                     f"{t['median_s'] / c['median_s']:.2f} | {c['n_iter']}, {t['n_iter']} | "
                     f"{t['max_abs_diff_vs_cpu']:.1e} |")
    (out / "thrust_cpu.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100k/1M,100/1M", help="items/comparisons, comma-separated")
    ap.add_argument("--methods", default="newton,mm")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    if not pycomp.build_info().get("thrust"):
        sys.exit("this build has no device='thrust' (CCCL headers not found at build time)")
    rows = run(args.sizes.split(","), args.methods.split(","), args.repeats, args.alpha, args.tol)
    write(rows, args.out, args)


if __name__ == "__main__":
    main()
