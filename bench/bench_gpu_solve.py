"""The CUDA PoE-BT solver on a GPU against the CPU backend, measured in the same run.

For each size (default 1M items / 10M comparisons and 10M / 100M; soft
outcomes, ``alpha = 1``, ``tol = 1e-8``, ``method="auto"``, i.e. Newton-PCG):

* ``cuda``: ``pycomp.solve(device="cuda")`` on torch CUDA tensors (zero-copy,
  so **no host-device transfer is timed**; the graph build, the solve and the
  copy of the scores back are);
* ``cuda-numpy``: the same on NumPy arrays (the one copy of the comparisons
  to the device is timed too); the difference of the medians is the transfer;
* ``cpu`` (the named baseline): ``pycomp.solve(device="cpu")`` on the same
  comparisons, all cores;
* ``thrust`` (``--smoke`` only): the GPU source built with Thrust's OpenMP
  device system, to run this script's code paths on a CPU machine.

Every solution is compared with the ``cpu`` one (max |s - s_cpu|; the target
is 1e-6) and the medians of the timed runs are reported with p20 / p80.

Data pass: the time of one MM sweep, ``(T(1 + K sweeps) - T(1 sweep)) / K``
with ``method="mm"`` and ``max_iter`` 1 and 1 + K (K chosen so that the K
sweeps take about ``--pass-target-ms``), against the pass's bytes divided by
the device's peak DRAM bandwidth (:mod:`gpu_info`: 2 x memory clock x bus
width / 8). A sweep must at least read ``i`` and ``j`` (int32) and ``p``
(float64) once: ``m x 16`` bytes for soft outcomes, ``m x 8`` for hard ones.
That is a lower bound on the traffic (a CSR layout reads every comparison
from both items' rows, and the score gathers are random), so the ratio is an
upper bound on how far the pass is from the hardware (target: <= 2). The
Newton solve's average pass, ``T / (Newton steps + CG steps)``, is given too.

Device memory: the inputs at 10M / 100M are 100M x (4 + 4 + 8) B = 1.6 GB
(int32 ``i``, ``j``, float64 ``p``). The solver adds its own arrays (the
comparisons sorted into a CSR by item, per-comparison curvatures, a few
item-sized vectors): 3.1 GB by the estimate of :func:`memory_estimate`,
so about 4.7 GB in all, far below the 80-141 GB of an H100 / H200. The
peak is measured as ``nvidia-smi``'s memory.used, sampled every 20 ms
during the first solve, minus the value before it.

Results: ``<out>/gpu_solve.json`` and ``<out>/gpu_solve.md`` (default
``bench/results/gpu``), rewritten after every size, so a run cut short keeps
what it measured.

Usage::

    python bench/bench_gpu_solve.py                       # on a GPU machine
    python bench/bench_gpu_solve.py --smoke --out /tmp/x  # tiny sizes, CPU + thrust, any machine
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gpu_info import commit, device_facts  # noqa: E402
from utils import machine_info, markdown_table, parse_count  # noqa: E402

DEFAULT_SIZES = "1M/10M,10M/100M"
SMOKE_SIZES = "2k/20k,20k/200k"
SOFT_NOISE_SD = 0.5
TARGET_MS_1M_10M = 30.0
TARGET_AGREE = 1e-6
TARGET_PASS_RATIO = 2.0
CPU_PASS_MAX_M = 10_000_000  # the CPU's MM sweep is timed up to this size (seconds of sweeps beyond)


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def make_comparisons(n: int, m: int, outcome: str, seed: int, on_gpu: bool):
    """Random Bradley-Terry comparisons, int32 ``i``, ``j`` and float64 ``p`` (None for hard).

    True scores ``s ~ N(0, 1)``; pairs uniform over ``i != j``. Soft:
    ``p = sig(s_i - s_j + e)``, ``e ~ N(0, 0.5^2)``. Hard: the first item wins
    with probability ``sig(s_i - s_j)`` and is put first. Generated with torch
    on the GPU when ``on_gpu`` (seconds of NumPy at 100M), else with NumPy.

    Returns
    -------
    dict
        ``i``, ``j``, ``p`` on the device (torch) or host (NumPy) and
        ``i_np``, ``j_np``, ``p_np``, the NumPy copies.
    """
    if on_gpu:
        import torch

        g = torch.Generator(device="cuda").manual_seed(int(np.random.SeedSequence([seed, n, m, outcome == "soft"])
                                                              .generate_state(1)[0]))
        s = torch.randn(n, generator=g, device="cuda", dtype=torch.float64)
        i = torch.randint(0, n, (m,), generator=g, device="cuda", dtype=torch.int64)
        j = (i + torch.randint(1, n, (m,), generator=g, device="cuda", dtype=torch.int64)) % n
        d = s[i] - s[j]
        if outcome == "soft":
            p = torch.sigmoid(d + SOFT_NOISE_SD * torch.randn(m, generator=g, device="cuda", dtype=torch.float64))
        else:
            first = torch.rand(m, generator=g, device="cuda", dtype=torch.float64) < torch.sigmoid(d)
            i, j = torch.where(first, i, j), torch.where(first, j, i)
            p = None
        del d, s
        i, j = i.to(torch.int32), j.to(torch.int32)
        torch.cuda.synchronize()
        data = {"i": i, "j": j, "p": p, "i_np": i.cpu().numpy(), "j_np": j.cpu().numpy(),
                "p_np": None if p is None else p.cpu().numpy()}
        torch.cuda.empty_cache()
        return data
    rng = np.random.default_rng([seed, n, m, outcome == "soft"])
    s = rng.standard_normal(n)
    i = rng.integers(0, n, m)
    j = (i + rng.integers(1, n, m)) % n
    d = s[i] - s[j]
    if outcome == "soft":
        p = 1.0 / (1.0 + np.exp(-(d + SOFT_NOISE_SD * rng.standard_normal(m))))
    else:
        first = rng.random(m) < 1.0 / (1.0 + np.exp(-d))
        i, j = np.where(first, i, j), np.where(first, j, i)
        p = None
    i, j = i.astype(np.int32), j.astype(np.int32)
    return {"i": i, "j": j, "p": p, "i_np": i, "j_np": j, "p_np": p}


def pass_bytes(m: int, soft: bool) -> int:
    """Bytes a sweep must read at least: int32 ``i`` and ``j``, float64 ``p`` when soft."""
    return m * (4 + 4 + (8 if soft else 0))


def memory_estimate(n: int, m: int, soft: bool) -> dict:
    """Device bytes of one solve: the inputs and an estimate of the solver's own arrays.

    Solver: the comparisons sorted into a CSR by item, each listed under both
    items (2 m x (int32 other item + int32 comparison index)), a float64
    curvature per comparison, the CSR offsets (int64 per item) and about eight
    float64 item vectors (scores, gradient, Newton direction, CG vectors).
    """
    inputs = pass_bytes(m, soft)
    solver = 2 * m * 8 + m * 8 + n * 8 + 8 * n * 8
    return {"inputs_bytes": inputs, "solver_bytes_estimate": solver, "total_bytes_estimate": inputs + solver}


# --------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------


class GpuMemoryPoll:
    """Peak ``nvidia-smi`` memory.used (MiB) of GPU 0 during a block, sampled every 20 ms.

    Sampled by a separate process, so it sees the solver's own allocations
    (which torch's allocator statistics do not) whether or not the solve
    holds the GIL. ``peak_mib`` is None when nvidia-smi is unavailable.
    """

    def __init__(self):
        self.before_mib = self.peak_mib = None
        self._proc = None
        self._samples: list[int] = []

    @staticmethod
    def _used() -> int | None:
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                  "-i", "0"], capture_output=True, text=True, timeout=10)
            return int(out.stdout.split()[0]) if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None

    def __enter__(self):
        self.before_mib = self._used()
        if self.before_mib is None:
            return self
        self._proc = subprocess.Popen(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                                       "-i", "0", "-lms", "20"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        time.sleep(0.1)  # the first sample
        return self

    def _read(self):
        for line in self._proc.stdout:
            try:
                self._samples.append(int(line.strip()))
            except ValueError:
                pass

    def __exit__(self, *exc):
        if self._proc is None:
            return False
        time.sleep(0.06)  # a last sample after the block
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        self._reader.join(timeout=5)
        if self._samples:
            self.peak_mib = max(self._samples)
        return False


def _solve(pycomp, data_keys, data, n, args, device, **kw):
    i, j, p = (data[k] for k in data_keys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning is recorded from the Solution
        return pycomp.solve(i, j, p, n_items=n, alpha=args.alpha, tol=args.tol, device=device, **kw)


def _sync():
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:
        pass


def time_solves(fn, repeats: int, warmup: int = 1):
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` discarded ones, and the last result."""
    res = None
    for _ in range(warmup):
        res = fn()
    times = []
    for _ in range(repeats):
        _sync()
        t0 = time.perf_counter()
        res = fn()
        _sync()
        times.append(time.perf_counter() - t0)
    return times, res


def sweep_time(fn_k, target_s: float, k_max: int):
    """One MM sweep's seconds, ``(T(1 + K) - T(1)) / K``: ``fn_k(k)`` solves with ``max_iter=k``.

    K starts at 8 and is scaled so that the K sweeps take about ``target_s``;
    the sweeps actually run (``n_iter``) are used, in case MM converged earlier.
    """
    def med(k):
        ts, sol = time_solves(lambda: fn_k(k), repeats=3, warmup=1)
        return statistics.median(ts), sol

    t1, _ = med(1)
    k = 8
    tk, sol = med(1 + k)
    per = max(tk - t1, 1e-9) / max(sol.n_iter - 1, 1)
    k = int(np.clip(target_s / per, 8, k_max))
    tk, sol = med(1 + k)
    swept = max(sol.n_iter - 1, 1)
    return {"pass_s": max(tk - t1, 0.0) / swept, "pass_k": swept, "pass_t1_s": t1, "pass_tk_s": tk}


def _row_from(sol, times, **extra) -> dict:
    row = dict(extra)
    row.update(status="ok", times_s=times, median_s=statistics.median(times),
               p20_s=float(np.quantile(times, 0.2)), p80_s=float(np.quantile(times, 0.8)),
               n_iter=int(sol.n_iter), n_inner=int(getattr(sol, "n_inner", 0)), grad_norm=float(sol.grad_norm),
               converged=bool(sol.converged), method=sol.method, solution_device=sol.device)
    passes = row["n_iter"] + row["n_inner"]
    if sol.method == "newton" and passes:
        row["newton_avg_pass_s"] = row["median_s"] / passes
    return row


def device_status(pycomp, device: str) -> str | None:
    """None when ``device`` can be solved on here, else why not."""
    if device == "cuda":
        try:
            ok = pycomp.cuda_available()
        except Exception as exc:  # no compiled core
            return f"SKIP: pycomp.cuda_available() failed: {type(exc).__name__}: {exc}"
        if not ok:
            try:
                from pycomp._devices import cuda_unavailable_reason  # the test solve's error included

                reason = cuda_unavailable_reason()
            except (ImportError, AttributeError):
                reason = pycomp.build_info().get("cuda_unavailable_reason")
            reason = reason or "no reason given"
            return f"SKIP: pycomp.cuda_available() is False: {reason}"
        return None
    try:
        pycomp.solve([0], [1], n_items=2, device=device)
    except (ValueError, RuntimeError) as exc:
        return f"SKIP: device={device!r} cannot be used with this build: {exc}"
    except Exception as exc:  # a broken build: say so, do not stop the others
        return f"SKIP: device={device!r} failed on a 2-item problem: {type(exc).__name__}: {exc}"
    return None


def run_size(pycomp, args, n: int, m: int, providers: list[str], status: dict, deadline: float,
             cpu_rate: dict) -> list[dict]:
    """Rows of every provider at one size (see the module docstring)."""
    label = f"{_count(n)}/{_count(m)}"
    soft = args.outcome == "soft"
    on_gpu = status.get("cuda") is None and args.torch_ok
    t0 = time.perf_counter()
    data = make_comparisons(n, m, args.outcome, args.seed, on_gpu=on_gpu)
    gen_s = time.perf_counter() - t0
    est = memory_estimate(n, m, soft)
    print(f"[{label}] data made in {gen_s:.1f} s ({'torch on the GPU' if on_gpu else 'NumPy'}); inputs "
          f"{est['inputs_bytes'] / 1e9:.2f} GB, solver arrays estimated {est['solver_bytes_estimate'] / 1e9:.2f} GB",
          flush=True)
    base = dict(size=label, n_items=n, n_comparisons=m, outcome=args.outcome, alpha=args.alpha, tol=args.tol,
                pass_bytes=pass_bytes(m, soft), **est)
    rows, scores = [], {}
    keys = {"cuda": ("i", "j", "p"), "cuda-numpy": ("i_np", "j_np", "p_np"), "cpu": ("i_np", "j_np", "p_np"),
            "thrust": ("i_np", "j_np", "p_np")}
    for prov in providers:
        device = "cuda" if prov.startswith("cuda") else prov
        row = dict(base, provider=prov, device=device)
        skip = status.get(device)
        if prov == "cuda" and skip is None and not on_gpu:
            skip = "SKIP: needs torch with CUDA for zero-copy device inputs"
        if skip is None and time.perf_counter() > deadline:
            skip = "SKIP: out of the time budget (--budget-s)"
        if skip is None and prov == "cpu" and cpu_rate.get("s_per_comparison"):
            projected = cpu_rate["s_per_comparison"] * m * (1 + args.cpu_repeats)
            if time.perf_counter() + projected > deadline:
                skip = (f"SKIP: projected {projected:.0f} s for {1 + args.cpu_repeats} CPU solves "
                        f"would pass the time budget")
        if skip is not None:
            row["status"] = skip
            rows.append(row)
            print(f"[{label}] {prov}: {skip}", flush=True)
            continue
        repeats = args.cpu_repeats if prov in ("cpu", "thrust") else args.repeats
        warmup = 0 if prov in ("cpu", "thrust") and m >= 50_000_000 else 1

        def fn(device=device, prov=prov, **kw):
            return _solve(pycomp, keys[prov], data, n, args, device, **kw)

        try:
            if prov == "cuda":
                with GpuMemoryPoll() as poll:
                    fn()
                row["device_mem_before_mib"] = poll.before_mib
                row["device_mem_peak_mib"] = poll.peak_mib
                if poll.peak_mib is not None and poll.before_mib is not None:
                    row["device_mem_solve_mib"] = poll.peak_mib - poll.before_mib
            times, sol = time_solves(fn, repeats=repeats, warmup=warmup)
            row.update(_row_from(sol, times))
            scores[prov] = np.asarray(sol.scores)
            if prov == "cpu":
                cpu_rate["s_per_comparison"] = row["median_s"] / m
            if not args.no_pass and (prov in ("cuda", "thrust") or (prov == "cpu" and m <= CPU_PASS_MAX_M)):
                row.update(sweep_time(lambda k, fn=fn: fn(method="mm", max_iter=k),
                                      args.pass_target_ms / 1e3, args.pass_k_max))
        except Exception as exc:  # a CUDA error becomes a Python exception: record it, go on
            row["status"] = f"error: {type(exc).__name__}: {exc}"[:400]
        rows.append(row)
        print(f"[{label}] {_line(row)}", flush=True)
    ref = scores.get("cpu")
    for row in rows:
        if ref is not None and row["provider"] in scores and row["provider"] != "cpu":
            row["max_abs_diff_vs_cpu"] = float(np.max(np.abs(scores[row["provider"]] - ref)))
    cuda_row = next((r for r in rows if r["provider"] == "cuda" and r.get("status") == "ok"), None)
    np_row = next((r for r in rows if r["provider"] == "cuda-numpy" and r.get("status") == "ok"), None)
    if cuda_row and np_row:
        np_row["transfer_s_estimate"] = np_row["median_s"] - cuda_row["median_s"]
    data.clear()  # the device and host arrays go now, whatever still refers to the dict
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
    return rows


def _count(x: int) -> str:
    for suf, mult in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if x >= mult and x % mult == 0:
            return f"{x // mult}{suf}"
    return str(x)


def _ms(x):
    return None if x is None else f"{x * 1e3:.3g}"


def _line(r: dict) -> str:
    if r.get("status") != "ok":
        return f"{r['provider']}: {r['status']}"
    s = (f"{r['provider']}: median {_ms(r['median_s'])} ms [{_ms(r['p20_s'])}, {_ms(r['p80_s'])}] over "
         f"{len(r['times_s'])} runs, {r['method']} {r['n_iter']} it ({r['n_inner']} inner), "
         f"|grad| {r['grad_norm']:.1e}")
    if "pass_s" in r:
        s += f"; MM sweep {_ms(r['pass_s'])} ms (K={r['pass_k']})"
    if r.get("device_mem_solve_mib") is not None:
        s += f"; device memory +{r['device_mem_solve_mib']} MiB"
    return s


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def derive(rows: list[dict], peak_bps: float | None, copy_bps: float | None) -> None:
    """Add bandwidth ratios and the speed-up over the CPU baseline to the rows, in place."""
    for r in rows:
        if r.get("status") != "ok":
            continue
        cpu = next((c for c in rows if c["size"] == r["size"] and c["provider"] == "cpu"
                    and c.get("status") == "ok"), None)
        if cpu is not None and r["provider"] != "cpu":
            r["speedup_vs_cpu"] = cpu["median_s"] / r["median_s"]
        if "pass_s" in r and r["device"] == "cuda":
            if peak_bps:
                r["pass_ideal_s"] = r["pass_bytes"] / peak_bps
                r["pass_over_ideal"] = r["pass_s"] / r["pass_ideal_s"]
            if copy_bps:
                r["pass_over_measured_copy"] = r["pass_s"] / (2 * r["pass_bytes"] / copy_bps)


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets, each with the figure that decides it."""
    out = []
    c1 = next((r for r in rows if r["provider"] == "cuda" and r["size"] == "1M/10M"), None)
    if c1 is not None and c1.get("status") == "ok":
        ok = c1["median_s"] * 1e3 <= TARGET_MS_1M_10M
        out.append(f"1M/10M solve excluding transfer: {_ms(c1['median_s'])} ms, target <= {TARGET_MS_1M_10M:g} ms: "
                   f"{'met' if ok else 'NOT met'}.")
    for r in rows:
        if r.get("status") == "ok" and "max_abs_diff_vs_cpu" in r:
            ok = r["max_abs_diff_vs_cpu"] <= TARGET_AGREE
            out.append(f"{r['size']} {r['provider']}: max |s - s_cpu| = {r['max_abs_diff_vs_cpu']:.1e}, target "
                       f"<= {TARGET_AGREE:g}: {'met' if ok else 'NOT met'}.")
        if r.get("status") == "ok" and "pass_over_ideal" in r:
            ok = r["pass_over_ideal"] <= TARGET_PASS_RATIO
            out.append(f"{r['size']} {r['provider']}: MM sweep {_ms(r['pass_s'])} ms = {r['pass_over_ideal']:.2f}x "
                       f"bytes / peak bandwidth, target <= {TARGET_PASS_RATIO:g}x: {'met' if ok else 'NOT met'}.")
    big = [r for r in rows if r["provider"] == "cuda" and r["n_comparisons"] >= 100_000_000]
    for r in big:
        ok = r.get("status") == "ok" and r.get("converged")
        out.append(f"{r['size']} on one GPU: {'solved (converged)' if ok else 'NOT solved: ' + str(r.get('status'))}.")
    return out


def write(out: Path, meta: dict, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    peak = (meta.get("gpu") or {}).get("peak", {}).get("bytes_per_s")
    copy = ((meta.get("gpu") or {}).get("measured") or {}).get("copy_bytes_per_s")
    derive(rows, peak, copy)
    (out / "gpu_solve.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float) + "\n")
    view = []
    for r in rows:
        v = dict(r)
        for k in ("median_s", "p20_s", "p80_s", "pass_s", "pass_ideal_s", "newton_avg_pass_s", "transfer_s_estimate"):
            v[k] = _ms(r.get(k))
        for k in ("grad_norm", "max_abs_diff_vs_cpu"):
            v[k] = None if r.get(k) is None else f"{r[k]:.1e}"
        for k in ("speedup_vs_cpu", "pass_over_ideal", "pass_over_measured_copy"):
            v[k] = None if r.get(k) is None else f"{r[k]:.2f}"
        v["iters"] = None if r.get("n_iter") is None else f"{r['n_iter']} ({r['n_inner']})"
        v["runs"] = None if r.get("times_s") is None else len(r["times_s"])
        v["mem"] = r.get("device_mem_solve_mib")
        v["est"] = f"{r['total_bytes_estimate'] / 2**20:.0f}"
        view.append(v)
    gpu = meta.get("gpu") or {}
    lines = [
        "# PoE-BT solver: CUDA backend vs the CPU backend (same run)", "",
        f"Command: `{meta['command']}`; commit {meta['commit']}.",
        f"Device: {gpu.get('name', 'no CUDA device')}"
        + (f" (sm_{gpu['capability'].replace('.', '')}, {gpu['total_memory_gib']} GiB, driver {gpu['driver']})"
           if gpu.get("cuda") else "")
        + f"; CPU {meta['machine'].get('cpu_model')} x{meta['machine'].get('n_cpus')}.",
    ]
    if gpu.get("cuda"):
        pk = gpu["peak"]
        lines.append(f"Peak DRAM bandwidth: {pk['bytes_per_s'] / 1e9:.0f} GB/s ({pk['how']})." if pk["bytes_per_s"]
                     else f"Peak DRAM bandwidth: unknown ({pk['how']}).")
        if gpu.get("measured"):
            lines.append(f"Measured: device copy {gpu['measured']['copy_bytes_per_s'] / 1e9:.0f} GB/s (read + write), "
                         f"float32 sum {gpu['measured']['read_bytes_per_s'] / 1e9:.0f} GB/s.")
    lines += [
        "", f"{meta['outcome']} outcomes, alpha = {meta['alpha']:g}, tol = {meta['tol']:g}, method auto. Times are "
        "medians [p20, p80] of the timed runs after one warm-up (none for CPU solves at 100M comparisons). "
        "`cuda` takes torch CUDA tensors (no transfer timed); `cuda-numpy` copies NumPy arrays to the device "
        "inside the timed call. `iters`: Newton steps (CG steps). `device MiB`: nvidia-smi memory.used peak "
        "minus before, first solve; `est. MiB`: inputs + the solver's arrays as estimated by "
        "`memory_estimate`.", "",
        markdown_table(view, [("size", "size"), ("provider", "provider"), ("median ms", "median_s"),
                              ("p20 ms", "p20_s"), ("p80 ms", "p80_s"), ("runs", "runs"), ("method", "method"),
                              ("iters", "iters"), ("grad inf-norm", "grad_norm"), ("converged", "converged"),
                              ("max abs diff vs cpu", "max_abs_diff_vs_cpu"), ("x cpu speed", "speedup_vs_cpu"),
                              ("transfer ms", "transfer_s_estimate"), ("device MiB", "mem"), ("est. MiB", "est"),
                              ("status", "status")]),
        "", "## Data passes", "",
        "MM sweep: `(T(1 + K) - T(1)) / K` with method mm; bytes: the pass's minimum reads (int32 i, j; float64 p "
        "when soft), a lower bound; `x ideal`: sweep time / (bytes / peak bandwidth), target <= 2; `x copy`: "
        "against a measured device copy of the same bytes. Newton: solve time / (Newton + CG steps), an upper "
        "bound on its pass (set-up included).", "",
        markdown_table([v for v in view if v.get("pass_s") or v.get("newton_avg_pass_s")],
                       [("size", "size"), ("provider", "provider"), ("K", "pass_k"), ("MM sweep ms", "pass_s"),
                        ("bytes / sweep", "pass_bytes"), ("ideal ms at peak", "pass_ideal_s"),
                        ("x ideal", "pass_over_ideal"), ("x copy", "pass_over_measured_copy"),
                        ("Newton avg pass ms", "newton_avg_pass_s")]),
        "", "## Targets", "",
    ]
    lines += [f"- {t}" for t in targets(rows)] or ["- no CUDA figure in this run."]
    (out / "gpu_solve.md").write_text("\n".join(lines) + "\n")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", help=f"comma list of items/comparisons (default {DEFAULT_SIZES}; "
                                    f"--smoke: {SMOKE_SIZES})")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes and the thrust (OpenMP) device: runs every code path on a CPU machine")
    ap.add_argument("--outcome", choices=("soft", "hard"), default="soft")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--repeats", type=int, default=10, help="timed CUDA solves per size")
    ap.add_argument("--cpu-repeats", type=int, default=1, help="timed CPU / thrust solves per size")
    ap.add_argument("--pass-target-ms", type=float, default=100.0)
    ap.add_argument("--pass-k-max", type=int, default=2000)
    ap.add_argument("--no-pass", action="store_true", help="skip the MM sweep measurement")
    ap.add_argument("--budget-s", type=float, default=0.0,
                    help="stop starting new solves after this many seconds (0: no limit)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results" / "gpu"))
    args = ap.parse_args(argv)
    args.sizes = args.sizes or (SMOKE_SIZES if args.smoke else DEFAULT_SIZES)
    try:
        args.size_list = [tuple(parse_count(x) for x in s.split("/")) for s in args.sizes.split(",")]
        assert all(len(s) == 2 for s in args.size_list)
    except (ValueError, AssertionError):
        ap.error(f"--sizes: expected items/comparisons pairs like 1M/10M, got {args.sizes!r}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    deadline = t_start + args.budget_s if args.budget_s > 0 else float("inf")
    import pycomp

    try:
        import torch

        args.torch_ok = torch.cuda.is_available()
    except ImportError:
        args.torch_ok = False
    providers = ["cuda", "cuda-numpy", "cpu"] + (["thrust"] if args.smoke else [])
    status = {d: device_status(pycomp, d) for d in ("cuda", "cpu", "thrust")}
    for d, s in status.items():
        print(f"device {d}: {'available' if s is None else s}", flush=True)
    gpu = device_facts() if args.torch_ok else None
    meta = {"command": "python bench/bench_gpu_solve.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "commit": commit(), "machine": machine_info(), "gpu": gpu or {"cuda": False},
            "pycomp_build": {k: v for k, v in pycomp.build_info().items()}, "outcome": args.outcome,
            "alpha": args.alpha, "tol": args.tol, "device_status": status, "smoke": args.smoke}
    out = Path(args.out)
    rows: list[dict] = []
    cpu_rate: dict = {}
    for n, m in args.size_list:
        rows += run_size(pycomp, args, n, m, providers, status, deadline, cpu_rate)
        meta["elapsed_s"] = time.perf_counter() - t_start
        write(out, meta, rows)
    print((out / "gpu_solve.md").read_text())
    print(f"done in {time.perf_counter() - t_start:.1f} s; results in {out}/gpu_solve.{{json,md}}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
