"""Compare two builds of the compiled core on ``bench/bench_solve.py``, alternating them.

Each build is a saved ``_core`` extension file (e.g. copied out of site-packages before
and after a change). The two are run in turns, each bench run in fresh processes, so
that a drift of the machine's speed falls on both; the summary gives every run's
median and the median of the per-run medians for each case.

    python bench/compare_builds.py --before /tmp/core_before.so --after /tmp/core_after.so \
        --rounds 3 --out bench/results/compare_builds

writes ``compare.json`` and ``compare.md`` in ``--out`` (and each run's own results
in subfolders).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from utils import git_commit, markdown_table

HERE = Path(__file__).resolve().parent

# Imported by Python at start-up (through PYTHONPATH): registers the saved build as
# pycomp._core before pycomp loads its own.
SITECUSTOMIZE = '''
import importlib.util, os, sys
_so = os.environ.get("PYCOMP_CORE_SO")
if _so:
    _spec = importlib.util.spec_from_file_location("pycomp._core", _so)
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
    sys.modules["pycomp._core"] = _mod
'''


def run_bench(so: Path, site: Path, out: Path, args: argparse.Namespace) -> list:
    """One bench_solve run with the build ``so``; returns its result rows."""
    env = dict(os.environ, PYCOMP_CORE_SO=str(so), PYTHONPATH=f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    cmd = [sys.executable, str(HERE / "bench_solve.py"), "--sizes", args.sizes, "--providers", args.providers,
           "--repeats", str(args.repeats), "--no-bandwidth", "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "solve.json").read_text())["rows"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="the saved _core extension before the change")
    parser.add_argument("--after", type=Path, required=True, help="the saved _core extension after the change")
    parser.add_argument("--rounds", type=int, default=3, help="before/after pairs of runs")
    parser.add_argument("--sizes", default="10k/200k,1M/10M")
    parser.add_argument("--providers", default="pycomp-newton")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "compare_builds")
    args = parser.parse_args()

    runs = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        for r in range(args.rounds):
            for label, so in (("before", args.before), ("after", args.after)):
                rows = run_bench(so, site, args.out / f"{label}_{r + 1}", args)
                runs[label].append(rows)
                print(f"round {r + 1} {label}: " + ", ".join(
                    f"{row['size']} {row['outcome']} {row['median_s'] * 1e3:.1f} ms" for row in rows), flush=True)

    table = []
    keys = [(row["size"], row["outcome"], row["provider"]) for row in runs["before"][0]]
    for key in keys:
        entry = {"size": key[0], "outcome": key[1], "provider": key[2]}
        for label in ("before", "after"):
            medians = [row["median_s"] for rows in runs[label] for row in rows
                       if (row["size"], row["outcome"], row["provider"]) == key]
            iters = {(row.get("n_iter"), row.get("n_inner")) for rows in runs[label] for row in rows
                     if (row["size"], row["outcome"], row["provider"]) == key}
            entry[f"{label}_runs_ms"] = ", ".join(f"{m * 1e3:.1f}" for m in medians)
            entry[f"{label}_median_ms"] = round(statistics.median(medians) * 1e3, 1)
            entry[f"{label}_iters"] = sorted(iters, key=str)
        entry["after_over_before"] = round(entry["after_median_ms"] / entry["before_median_ms"], 3)
        table.append(entry)
    result = {"commit": git_commit(), "before": str(args.before), "after": str(args.after), "rounds": args.rounds,
              "command": " ".join(sys.argv), "rows": table}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = (f"# Two builds on bench_solve.py, alternating (commit `{result['commit']}`)\n\n"
            f"`{result['command']}`\n\nMedian of each run (ms), and the median of those medians:\n\n"
            + markdown_table(table, [("size", "size"), ("outcome", "outcome"), ("provider", "provider"),
                                     ("before: runs", "before_runs_ms"), ("before", "before_median_ms"),
                                     ("after: runs", "after_runs_ms"), ("after", "after_median_ms"),
                                     ("after / before", "after_over_before")]) + "\n")
    (args.out / "compare.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
