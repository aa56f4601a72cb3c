"""Coverage of the 90% intervals on simulated judges with known scores.

Truth: n items with scores N(0, 1), centred. Each trial draws m comparisons of random
pairs and judges them with one of these judges, all with E[p | d] = sig(d) so that the
MLE (alpha = 0) is consistent for the centred truth:

* ``bernoulli``: hard outcomes, P(i wins) = sig(s_i - s_j) (the Hessian's own model);
* ``soft-k``: soft judgements p ~ Beta(k q, k (1 - q)), q = sig(s_i - s_j): a judge
  whose probabilities scatter around the truth, less the larger k (k = 2: noisy,
  k = 20: a confident, consistent judge, whose variance is far below q (1 - q));
* ``pair-bias``: each pair has its own win probability q_ab ~ Beta(10 q, 10 (1 - q)),
  shared by all its comparisons, which are hard outcomes from q_ab: repeats of a pair
  are correlated (not independent), so the sandwich and the bootstrap are clustered
  by pair (``cluster=pair``).

For each method (Hessian normal interval, sandwich normal interval, bootstrap percentile
interval, B replicates, and the Hessian and bootstrap intervals with the estimated
dispersion, ``dispersion="pearson"``, :mod:`pycomp.dispersion`, what the commands do by
default) it reports the fraction of (trial, item)
cases whose 90% interval contains the true score, with its binomial standard error.

Bradley-Terry identifies score differences only: with ``alpha = 0`` the scores are centred,
and with ``alpha > 0`` the prior sets their common level (``sum tanh(s / 2) = 0``, not mean
0). The truth is therefore put on each solution's level, ``truth - mean(truth) +
mean(scores)``, before it is compared with the intervals (which changes nothing at
``alpha = 0``; the alpha > 0 tables of commit 5b698a1 compared the centred
truth with uncentred intervals and understated coverage).

Usage::

    python bench/bench_coverage.py [--trials 200] [--bootstrap 200] [--alpha 0] [--sizes 10:500,30:3000]

Writes bench/results/coverage.json and bench/results/coverage.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from utils import git_commit, machine_info, markdown_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = ((10, 500), (30, 3000), (100, 20000))
JUDGES = ("bernoulli", "soft-2", "soft-20", "pair-bias")
LEVEL = 0.9


def simulate(rng, truth, m, judge):
    n = truth.shape[0]
    i = rng.integers(0, n, m)
    j = rng.integers(0, n - 1, m)
    j[j >= i] += 1
    d = truth[i] - truth[j]
    q = 1.0 / (1.0 + np.exp(-d))
    cluster = None
    if judge == "bernoulli":
        p = (rng.random(m) < q).astype(float)
    elif judge.startswith("soft-"):
        k = float(judge.split("-")[1])
        p = rng.beta(k * q, k * (1.0 - q))
    else:
        a, b = np.minimum(i, j), np.maximum(i, j)
        key = a * n + b
        qa = 1.0 / (1.0 + np.exp(-(truth[:, None] - truth[None, :])))  # P(a beats b)
        pair_q = rng.beta(10.0 * qa, 10.0 * (1.0 - qa)).reshape(-1)[key]  # mean qa, shared by the pair
        q_row = np.where(i < j, pair_q, 1.0 - pair_q)
        p = (rng.random(m) < q_row).astype(float)
        cluster = key
    return i, j, p, cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--out", default=str(RESULTS / "coverage"))
    parser.add_argument("--alpha", type=float, default=0.0,
                        help="Prior strength of every solve (0: the MLE, consistent for the truth; 1: pycomp's default, "
                             "whose scores are shrunk toward 0)")
    parser.add_argument("--sizes", default=",".join(f"{n}:{m}" for n, m in SIZES),
                        help="ITEMS:COMPARISONS settings, comma-separated")
    args = parser.parse_args()
    import pycomp

    records = []
    start = time.time()
    sizes = [tuple(int(x) for x in part.split(":")) for part in args.sizes.split(",") if part]
    for n, m in sizes:
        for judge in JUDGES:
            rng = np.random.default_rng(1000 * n + JUDGES.index(judge))
            hits = {"hessian": [], "sandwich": [], "bootstrap": [], "hessian+dispersion": [],
                    "bootstrap+dispersion": []}
            widths = {k: [] for k in hits}
            for _ in range(args.trials):
                truth = rng.normal(size=n)
                truth -= truth.mean()
                i, j, p, cluster = simulate(rng, truth, m, judge)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        hess = pycomp.solve(i, j, p, n_items=n, alpha=args.alpha, return_se=True)
                        sand = pycomp.solve(i, j, p, n_items=n, alpha=args.alpha, return_se=True, se_method="sandwich",
                                            cluster=cluster)
                        boot = pycomp.solve(i, j, p, n_items=n, alpha=args.alpha, bootstrap=args.bootstrap,
                                            seed=int(rng.integers(2**32)), cluster=cluster)
                        quasi = pycomp.solve(i, j, p, n_items=n, alpha=args.alpha, return_se=True,
                                             dispersion="pearson")
                        quasi_boot = pycomp.solve(i, j, p, n_items=n, alpha=args.alpha, bootstrap=args.bootstrap,
                                                  seed=int(rng.integers(2**32)), cluster=cluster,
                                                  dispersion="pearson")
                except ValueError:  # no MLE (an item won or lost everything) or a disconnected graph
                    continue
                for name, sol in (("hessian", hess), ("sandwich", sand), ("bootstrap", boot),
                                  ("hessian+dispersion", quasi), ("bootstrap+dispersion", quasi_boot)):
                    low, high = sol.interval(LEVEL)
                    level_truth = truth + sol.scores.mean()
                    hits[name].append((level_truth >= low) & (level_truth <= high))
                    widths[name].append(high - low)
            for name in hits:
                rec = {"items": n, "comparisons": m, "judge": judge, "method": name,
                       "cluster": judge == "pair-bias" and name != "hessian", "trials": len(hits[name]),
                       "coverage": None, "coverage_se": None, "median_width": None}
                if hits[name]:  # none: no trial had an optimum (alpha = 0 on sparse hard outcomes)
                    cover = np.concatenate(hits[name])
                    rec.update(coverage=float(cover.mean()),
                               coverage_se=float(np.sqrt(cover.mean() * (1 - cover.mean()) / cover.size)),
                               median_width=float(np.median(np.concatenate(widths[name]))))
                records.append(rec)
                print(json.dumps(rec), flush=True)

    payload = {"commit": git_commit(), "machine": machine_info(), "level": LEVEL, "trials": args.trials,
               "bootstrap": args.bootstrap, "alpha": args.alpha, "seconds": time.time() - start, "records": records}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str))
    rows = [{**r, "cov": "no trial had an optimum" if r["coverage"] is None else
             f"{100 * r['coverage']:.1f}% +- {100 * r['coverage_se']:.1f}",
             "width": "-" if r["median_width"] is None else f"{r['median_width']:.3f}"} for r in records]
    md = [f"# Coverage of 90% intervals (simulated judges, known scores, alpha = {args.alpha:g})", "",
          f"`python bench/bench_coverage.py {' '.join(sys.argv[1:])}` at commit {payload['commit']}: "
          f"{args.trials} trials per row, bootstrap B = {args.bootstrap}; pair-bias rows cluster the sandwich "
          "and the bootstrap by pair; +dispersion: the same with `dispersion=\"pearson\"`. The truth is "
          "compared on each solution's level (BT identifies differences only; see the module docstring).", "",
          markdown_table(rows, [("items", "items"), ("comparisons", "comparisons"), ("judge", "judge"),
                                ("method", "method"), ("trials", "trials"), ("coverage", "cov"),
                                ("median width", "width")])]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}  ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
