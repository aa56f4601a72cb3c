"""Summary of one ``bench/gpu_check.sh`` run: ``summary.md``, ``summary.json`` and ``key_figures.txt``.

Reads what the steps left in the results folder (``steps.tsv``, ``env.json``,
``gpu_info.json``, ``pytest_gpu_summary.txt``, ``gpu_solve.{json,md}``,
``head_loss.{json,md}``, ``gpu_train_step.{json,md}``) and writes

* ``summary.md``: the commit, the machine, every step's PASS / FAIL / SKIP with
  its time and reason, then every benchmark table in full;
* ``summary.json``: the same as data (steps, environment, all result rows);
* ``key_figures.txt``: the headline figures, one line each, for the console.

Usage::

    python bench/gpu_check_summary.py --out bench/results/gpu --commit abc123 --total-s 312
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from pathlib import Path


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _steps(out: Path) -> list[dict]:
    try:
        with open(out / "steps.tsv", newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    except OSError:
        return []


def _demote(md: str) -> str:
    """Headings one level down, so a results file nests under a summary section."""
    return "\n".join("#" + ln if ln.startswith("#") else ln for ln in md.splitlines())


def _ms(x):
    return "n/a" if x is None else f"{1e3 * x:.3g} ms"


def key_figures(solve, head, train) -> list[str]:
    """Headline lines: solver times and targets, kernel speed-ups, training-step throughput ratios."""
    lines = []
    for r in (solve or {}).get("rows", []):
        if r.get("status") != "ok":
            lines.append(f"solve {r['size']} {r['provider']}: {r.get('status')}")
            continue
        s = f"solve {r['size']} {r['provider']}: {_ms(r['median_s'])} (p20-p80 {_ms(r['p20_s'])}-{_ms(r['p80_s'])})"
        if "speedup_vs_cpu" in r:
            s += f", {r['speedup_vs_cpu']:.1f}x the CPU backend"
        if "max_abs_diff_vs_cpu" in r:
            s += f", max |s - s_cpu| {r['max_abs_diff_vs_cpu']:.1e}"
        if "pass_s" in r:
            s += f"; MM sweep {_ms(r['pass_s'])}"
            if "pass_over_ideal" in r:
                s += f" = {r['pass_over_ideal']:.2f}x bytes/peak"
        if r.get("device_mem_solve_mib") is not None:
            s += f"; device memory +{r['device_mem_solve_mib']} MiB"
        lines.append(s)
    for r in (head or {}).get("rows", []):
        if r.get("provider") != "pycomp":
            continue
        if r.get("status") != "ok":
            lines.append(f"head loss {r['op']} {r['dtype']} B={r['B']} V={r['V']}: {r.get('status')}")
            continue
        lines.append(f"head loss {r['op']} {r['dtype']} B={r['B']} V={r['V']} d={r['d']}: pycomp {r['median_ms']} ms, "
                     f"{r.get('speedup_vs_eager', 'n/a')}x eager, {r.get('x_read_head_x2', 'n/a')}x two head reads, "
                     f"grad rel err vs eager {r.get('grad_h_rel_err_vs_eager', 'n/a')}")
    for shape in (train or {}).get("shapes", []):
        for norm, run in shape.get("runs", {}).items():
            ran = {r["provider"]: r for r in run["rows"] if r["status"] == "run"}
            eps = ", ".join(f"{p} {r['examples_per_second']:.1f}" for p, r in ran.items())
            ratios = ", ".join(f"{k.replace('_over_', '/')} {v['examples_per_second']:.2f}x"
                               for k, v in run["ratios"].items())
            lines.append(f"train step {shape['shape']} {norm} ({shape['pycomp_backend']} backend): examples/s {eps}; "
                         f"{ratios}; warm-up losses agree to {run['warmup_loss_max_abs_diff']:.1e}"
                         if run["warmup_loss_max_abs_diff"] is not None else
                         f"train step {shape['shape']} {norm}: examples/s {eps}; {ratios}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="the results folder of the run")
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--total-s", type=float, default=None)
    args = ap.parse_args(argv)
    out = Path(args.out)
    steps = _steps(out)
    env = _load_json(out / "env.json") or {}
    gpu = _load_json(out / "gpu_info.json")
    solve = _load_json(out / "gpu_solve.json")
    head = _load_json(out / "head_loss.json")
    train = _load_json(out / "gpu_train_step.json")
    tests = _read(out / "pytest_gpu_summary.txt")
    keys = key_figures(solve, head, train)
    mods = env.get("modules", {})
    tools = env.get("tools", {})
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    n_fail = sum(s["status"] == "FAIL" for s in steps)
    lines = [
        "# pycomp GPU check (`bench/gpu_check.sh`)", "",
        f"Commit **{args.commit}**, run {when}"
        + (f", {args.total_s:.0f} s in all" if args.total_s is not None else "") + ". "
        + ("**All steps passed or were skipped.**" if not n_fail else f"**{n_fail} step(s) FAILED.**"), "",
        "## Machine", "",
        f"- GPU: {env.get('nvidia_smi') or 'none'}",
        f"- Python {env.get('python')} ({env.get('executable')}), {env.get('cpus')} CPUs; torch {mods.get('torch')} "
        f"(CUDA {env.get('torch_cuda')}), triton {mods.get('triton')}, transformers {mods.get('transformers')}, "
        f"peft {mods.get('peft')}, numpy {mods.get('numpy')}, bitsandbytes {mods.get('bitsandbytes') or 'absent'}",
        f"- Build tools: nvcc {tools.get('nvcc')}; cmake {tools.get('cmake')}; ninja {tools.get('ninja')}; "
        f"pybind11 {mods.get('pybind11')}, scikit-build-core {mods.get('scikit_build_core')}; pytest "
        f"{mods.get('pytest')}, hypothesis {mods.get('hypothesis')}",
    ]
    if gpu and gpu.get("cuda"):
        pk = gpu.get("peak", {})
        lines.append(f"- Peak DRAM bandwidth {pk['bytes_per_s'] / 1e9:.0f} GB/s ({pk['how']})" if pk.get("bytes_per_s")
                     else f"- Peak DRAM bandwidth unknown ({pk.get('how')})")
        if gpu.get("measured"):
            m = gpu["measured"]
            lines.append(f"- Measured: device copy {m['copy_bytes_per_s'] / 1e9:.0f} GB/s (read + write), float32 sum "
                         f"{m['read_bytes_per_s'] / 1e9:.0f} GB/s")
    lines += ["", "## Steps", "", "| step | status | seconds | detail |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['status']} | {s['seconds']} | {s['detail'].replace('|', '/')} |" for s in steps]
    if tests:
        lines += ["", "GPU tests (failures, uncollected modules, skip reasons):", "", "```", tests.rstrip(), "```"]
    lines += ["", "## Key figures", ""] + ([f"- {k}" for k in keys] or ["- none: no benchmark ran on a GPU."])
    for title, name in (("Solver", "gpu_solve.md"), ("Head-loss kernels", "head_loss.md"),
                        ("LoRA training step", "gpu_train_step.md")):
        md = _read(out / name)
        if md:
            lines += ["", f"## {title} (`{name}`)", "", _demote(md).rstrip()]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "key_figures.txt").write_text("\n".join(keys) + ("\n" if keys else ""))
    summary = {"commit": args.commit, "when": when, "total_s": args.total_s, "steps": steps, "env": env,
               "gpu": gpu, "solve": solve, "head_loss": head, "train_step": train, "key_figures": keys}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
