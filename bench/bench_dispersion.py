"""What the dispersion fit costs: ``pycomp.solve`` plain against ``dispersion="auto"``, in one run.

Soft judgements ``p ~ Beta(20 q, 20 (1 - q))`` of random pairs (scores N(0, 1)), alpha = 1,
standard errors by the local approximation (``se_method="local"``, the one that scales), each
setting solved ``--repeats`` times alternating plain and dispersion; median wall seconds.
The dispersion fit adds a collapse of the comparisons into unique pairs and two or three
more solves (the fixed point of phi, :mod:`pycomp.dispersion`).

    OMP_WAIT_POLICY=PASSIVE python bench/bench_dispersion.py --sizes 100k/1M,1M/10M --repeats 3

writes ``dispersion_cost.json`` and ``dispersion_cost.md`` in ``--out``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from utils import format_count, git_commit, machine_info, markdown_table, parse_count  # noqa: E402


def comparisons(n: int, m: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j[j >= i] += 1
    q = 1.0 / (1.0 + np.exp(-(truth[i] - truth[j])))
    return i, j, rng.beta(20.0 * q, 20.0 * (1.0 - q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100k/1M,1M/10M", help="ITEMS/COMPARISONS, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    import pycomp

    rows = []
    for size in args.sizes.split(","):
        n_text, m_text = size.split("/")
        n, m = parse_count(n_text), parse_count(m_text)
        i, j, p = comparisons(n, m)
        times = {"plain": [], "dispersion": []}
        phi = None
        for _ in range(args.repeats):
            for name, setting in (("plain", None), ("dispersion", "auto")):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sol = pycomp.solve(i, j, p, n_items=n, return_se=True, se_method="local", dispersion=setting)
                times[name].append(time.perf_counter() - start)
                phi = sol.dispersion if setting else phi
        plain, disp = statistics.median(times["plain"]), statistics.median(times["dispersion"])
        rows.append({"items": n, "comparisons": m, "plain_s": plain, "dispersion_s": disp, "ratio": disp / plain,
                     "phi": phi, "times": times})
        print(json.dumps(rows[-1]), flush=True)
    payload = {"commit": git_commit(), "machine": machine_info(), "repeats": args.repeats, "rows": rows,
               "command": "python bench/bench_dispersion.py " + " ".join(sys.argv[1:])}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dispersion_cost.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = markdown_table(
        [{"size": f"{format_count(r['items'])} / {format_count(r['comparisons'])}", "plain": f"{r['plain_s']:.2f}",
          "disp": f"{r['dispersion_s']:.2f}", "ratio": f"{r['ratio']:.1f}x", "phi": f"{r['phi']:.4f}"} for r in rows],
        [("items / comparisons", "size"), ("plain solve + local SE (s)", "plain"),
         ("dispersion='auto' (s)", "disp"), ("ratio", "ratio"), ("phi", "phi")])
    text = (f"# The cost of the dispersion fit\n\n`{payload['command']}` at commit {payload['commit']}, load average "
            f"{payload['machine'].get('loadavg_1m')}; median of {args.repeats}, plain and dispersion alternating.\n\n"
            + table + "\n")
    (args.out / "dispersion_cost.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
