"""Time the README's main job, ``pycomp rank example:reviews``, as a user runs it.

The command runs in a fresh subprocess (the judge model already fetched, as after
the set-up command), ``--repeats`` times into fresh output folders, each with an empty
judgement cache (``PYCOMP_CACHE_DIR`` in the run's folder: a first run judges every
prompt); the wall time of each run and the figures it wrote (run.json, metrics.json)
are recorded.

    python bench/bench_main_job.py --repeats 3 --out bench/results

writes ``main_job.json`` and ``main_job.md`` in ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from utils import git_changed_files, git_commit, machine_info, markdown_table

COMMAND = ["rank", "example:reviews", "--no-progress"]


def run_once(pycomp_exe: str, workdir: Path) -> dict:
    """Run the main job once into ``workdir / "reviews"`` and return its figures."""
    out = workdir / "reviews"
    start = time.perf_counter()
    env = {**os.environ, "PYCOMP_CACHE_DIR": str(workdir / "judgement-cache")}
    proc = subprocess.run([pycomp_exe, *COMMAND, "--out", str(out)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"pycomp rank failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    run = json.loads((out / "run.json").read_text())
    metrics = run["metrics"]
    with open(out / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    score, se = [float(r["score"]) for r in rows], sorted(float(r["se"]) for r in rows)
    summary = run["judge"]["summary"]
    return {
        "wall_s": round(wall, 2),
        "judge_s": summary["seconds"],
        "load_s": run["timings"]["load_seconds"],
        "n_items": run["n_items"],
        "n_pairs": run["n_pairs"],
        "n_prompts": summary["n_judged"] + summary["n_reused"],
        "prompts_per_s": round((summary["n_judged"]) / summary["seconds"], 2) if summary["seconds"] else None,
        "spearman": round(metrics["spearman"], 3),
        "pairwise_accuracy": round(metrics["pairwise_accuracy"], 3),
        "position_bias": round(summary["position_bias"], 3),
        "score_min": round(min(score), 3),
        "score_max": round(max(score), 3),
        "se_median": round(se[len(se) // 2], 3),
        "stdout": proc.stdout,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the command (each into a fresh folder)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="results folder")
    args = parser.parse_args()

    exe = shutil.which("pycomp") or str(Path(sys.executable).with_name("pycomp"))
    runs = []
    for k in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(run_once(exe, Path(tmp)))
        print(f"run {k + 1}: {runs[-1]['wall_s']} s wall, judge {runs[-1]['judge_s']} s", flush=True)
    result = {
        "command": "pycomp " + " ".join(COMMAND) + " --out DIR",
        "commit": git_commit(),
        "changed_files": git_changed_files("pycomp", "csrc"),
        "machine": machine_info(),
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "main_job.json").write_text(json.dumps(result, indent=2) + "\n")
    columns = [("run", "run"), ("wall (s)", "wall_s"), ("model load (s)", "load_s"), ("judging (s)", "judge_s"),
               ("prompts", "n_prompts"), ("prompts/s", "prompts_per_s"), ("Spearman", "spearman"),
               ("pairwise accuracy", "pairwise_accuracy"), ("position bias", "position_bias"),
               ("scores min / max", "score_range"), ("median se", "se_median")]
    rows = [dict(r, run=k + 1, score_range=f"{r['score_min']} / {r['score_max']}") for k, r in enumerate(runs)]
    changed = f" (files changed from it: {', '.join(result['changed_files'])})" if result["changed_files"] else ""
    text = (f"# Main job: `{result['command']}`\n\ncommit `{result['commit']}`{changed}, load average "
            f"{result['machine'].get('loadavg_1m')}; median wall time {result['wall_s_median']} s\n\n"
            + markdown_table(rows, columns) + "\n\nLast run's output:\n\n```\n" + runs[-1]["stdout"].strip()
            + "\n```\n")
    (args.out / "main_job.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
