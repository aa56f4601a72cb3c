"""Arena-shaped data: few items, very many comparisons (win / loss / tie), against named baselines.

For each size (items / comparisons, 10% ties) it times, in the same process and run:

* ``pycomp.solve`` (alpha = 0, the MLE; repeated pairs collapsed by default),
  with ``return_se=True`` (Hessian) and with ``bootstrap=B`` (solve + B replicates);
* evalica 0.4.2 ``bradley_terry`` (Rust), from the rows (its default settings);
* arena-rank 0.1.1 (the LMArena leaderboard's JAX package): ``PairDataset.from_pandas``
  (its own aggregation of the rows) + ``BradleyTerry.fit``;
* choix ``ilsr_pairwise_dense`` on the win-count matrix built from the rows (ties as half
  a win each way), with the matrix build timed;

and checks that every baseline reaches the same optimum: the largest difference of the
centred log-strengths from pycomp's scores.

Usage::

    python bench/bench_arena.py                      # 130 / 10M, then 1000 / 10M
    python bench/bench_arena.py --sizes 130:10M 1000:100M --baselines pycomp

Writes bench/results/arena.json and bench/results/arena.md.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

# As the pycomp commands do: idle OpenMP threads sleep instead of spinning (a shared machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from utils import format_count, git_commit, machine_info, markdown_table, parse_count  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BASELINES = ("pycomp", "evalica", "arena-rank", "choix")


def arena_data(n: int, m: int, seed: int = 0, ties: float = 0.1):
    """m comparisons of random pairs among n items with BT outcomes at scores N(0, 1) and `ties` ties."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, m, dtype=np.int32)
    j = rng.integers(0, n - 1, m, dtype=np.int32)
    j[j >= i] += 1
    truth = rng.normal(size=n)
    win = rng.random(m) < 1.0 / (1.0 + np.exp(-(truth[i] - truth[j])))
    p = win.astype(np.float64)
    p[rng.random(m) < ties] = 0.5
    return i, j, p


def timed(fn, repeats: int):
    """(median seconds, all times, last result) over `repeats` calls after one warm-up call."""
    out = fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), times, out


def centred(x):
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean()


def run_pycomp(i, j, p, n, B, repeats):
    import pycomp

    rows = []
    t, ts, sol = timed(lambda: pycomp.solve(i, j, p, alpha=0.0, n_items=n), repeats)
    rows.append(("pycomp solve", t, ts, sol.scores))
    t, ts, _ = timed(lambda: pycomp.solve(i, j, p, alpha=0.0, n_items=n, return_se=True), repeats)
    rows.append(("pycomp solve + se (Hessian)", t, ts, None))
    t, ts, _ = timed(lambda: pycomp.solve(i, j, p, alpha=0.0, n_items=n, return_se=True, se_method="sandwich"),
                     repeats)
    rows.append(("pycomp solve + se (sandwich)", t, ts, None))
    t, ts, boot = timed(lambda: pycomp.solve(i, j, p, alpha=0.0, n_items=n, bootstrap=B, seed=1), repeats)
    rows.append((f"pycomp solve + {B} bootstrap replicates", t, ts, None))
    t, ts, _ = timed(lambda: pycomp.solve(i, j, p, alpha=0.0, n_items=n, collapse=False), repeats)
    rows.append(("pycomp solve, not collapsed", t, ts, None))
    return rows, sol.scores, boot


def run_evalica(i, j, p, n, repeats):
    import evalica

    winners = np.where(p == 1.0, evalica.Winner.X, np.where(p == 0.0, evalica.Winner.Y, evalica.Winner.Draw))
    winners = list(winners)
    t, ts, res = timed(lambda: evalica.bradley_terry(i, j, winners, index=None), repeats)
    scores = res.scores.sort_index().to_numpy()
    return [("evalica 0.4.2 bradley_terry", t, ts, np.log(scores))]


def run_arena_rank(i, j, p, n, repeats):
    import pandas as pd
    from arena_rank.models.bradley_terry import BradleyTerry
    from arena_rank.utils.data_utils import PairDataset

    names = np.array([f"m{k:05d}" for k in range(n)])
    outcome = np.where(p == 1.0, "model_a", np.where(p == 0.0, "model_b", "tie"))
    frame = pd.DataFrame({"model_a": names[i], "model_b": names[j], "winner": outcome})

    def fit():
        ds = PairDataset.from_pandas(frame)
        model = BradleyTerry(n_competitors=len(ds.competitors))
        model.fit(ds)
        return ds, model

    t, ts, (ds, model) = timed(fit, repeats)
    order = np.argsort(np.asarray(ds.competitors))
    ratings = np.asarray(model.params["ratings"])[order]
    return [("arena-rank 0.1.1 (dataset + fit)", t, ts, ratings)]


def run_choix(i, j, p, n, repeats):
    import choix

    def fit():
        wins = np.zeros((n, n))
        np.add.at(wins, (i, j), p)
        np.add.at(wins, (j, i), 1.0 - p)
        return choix.ilsr_pairwise_dense(wins, alpha=0.0, tol=1e-10)

    t, ts, params = timed(fit, repeats)
    return [("choix ilsr_pairwise_dense (+ count matrix)", t, ts, params)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["130:10M", "1000:10M:20"],
                        help="ITEMS:COMPARISONS[:B] (B: bootstrap replicates at this size, default --bootstrap)")
    parser.add_argument("--baselines", nargs="+", default=list(BASELINES), choices=BASELINES)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "arena"))
    args = parser.parse_args()

    import pycomp

    records = []
    for size in args.sizes:
        fields = size.split(":")
        n, m = parse_count(fields[0]), parse_count(fields[1])
        B = int(fields[2]) if len(fields) > 2 else args.bootstrap
        i, j, p = arena_data(n, m)
        load = os.getloadavg()[0]
        rows, ref, boot = run_pycomp(i, j, p, n, B, args.repeats)
        for name, runner in (("evalica", run_evalica), ("arena-rank", run_arena_rank), ("choix", run_choix)):
            if name in args.baselines:
                try:
                    rows += runner(i, j, p, n, max(1, args.repeats - 2) if name != "choix" else args.repeats)
                except Exception as exc:  # a baseline that fails is reported, not fatal
                    print(f"{name} failed at {size}: {exc!r}", file=sys.stderr)
        evalica_t = next((r[1] for r in rows if r[0].startswith("evalica")), None)
        lo, hi = boot.interval(0.95)
        for name, t, ts, scores in rows:
            diff = None if scores is None else float(np.max(np.abs(centred(scores) - centred(ref))))
            rec = {
                "items": n, "comparisons": m, "ties": 0.1, "method": name, "median_s": t, "times_s": ts,
                "load_average_at_start": load,
                "max_abs_diff_from_pycomp": diff,
                "x_faster_than_evalica": None if evalica_t is None else evalica_t / t,
            }
            records.append(rec)
            print(json.dumps({k: v for k, v in rec.items() if k != "times_s"}))
        records.append({"items": n, "comparisons": m, "method": "pycomp bootstrap summary",
                        "unique_pairs": int(pycomp.collapse.collapse(i, j, p, units=False).n_pairs),
                        "median_95_width": float(np.median(hi - lo))})
        del i, j, p
        gc.collect()

    info = machine_info()
    payload = {"commit": git_commit(), "machine": info, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
               "load_average": os.getloadavg(), "bootstrap": args.bootstrap, "records": records}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str))
    table = [
        {"items": format_count(r["items"]), "comparisons": format_count(r["comparisons"]), "method": r["method"],
         "s": f"{r['median_s']:.3f}",
         "x": None if r["x_faster_than_evalica"] is None else f"{r['x_faster_than_evalica']:.1f}x",
         "diff": None if r["max_abs_diff_from_pycomp"] is None else f"{r['max_abs_diff_from_pycomp']:.1e}"}
        for r in records if "median_s" in r
    ]
    md = ["# Arena-shaped data: pycomp against evalica, arena-rank and choix", "",
          f"`python bench/bench_arena.py {' '.join(sys.argv[1:])}` at commit {payload['commit']}, "
          f"load average before writing {payload['load_average'][0]:.1f}. Median of {args.repeats} runs "
          "(baselines: fewer), after one warm-up. 10% ties; alpha = 0 (the MLE) for every method; "
          "'diff' is the largest difference of the centred log-strengths from pycomp's scores.", "",
          markdown_table(table, [("items", "items"), ("comparisons", "comparisons"), ("method", "method"),
                                ("median s", "s"), ("vs evalica", "x"), ("diff", "diff")])]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
