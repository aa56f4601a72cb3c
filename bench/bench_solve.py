"""Benchmark of the PoE-BT solvers: pycomp (CPU) against named baselines.

Providers (``--providers``, comma-separated, default all):

=====================  =====================================================
``pycomp-auto``        ``pycomp.solve(method="auto")``
``pycomp-newton``      ``pycomp.solve(method="newton")`` (Newton-PCG, C++/OpenMP)
``pycomp-mm``          ``pycomp.solve(method="mm")`` (Hunter's MM)
``pycomp-newman``      ``pycomp.solve(method="newman")``
``numpy-newton-pcg``   :func:`baselines.newton_pcg` (vectorised NumPy)
``scipy-sparse-newton-pcg``  the same with the incidence matrix as a SciPy
                       sparse matrix built once (``sparse=True``)
``numpy-newman``       :func:`baselines.newman` (vectorised NumPy)
``scipy-lbfgsb``       :func:`baselines.lbfgsb` (SciPy L-BFGS-B, the arena
                       leaderboards' method)
``choix-mm``           ``choix.mm_pairwise`` (its own stopping rule)
``choix-mm-exact``     ``choix.mm_pairwise`` at equal accuracy: stopped as
                       soon as its scores are within ``EXACT_ATOL`` (max abs)
                       of the exact fixed point of its own iteration
``choix-opt``          ``choix.opt_pairwise`` (SciPy Newton-CG, dense Hessian)
``choix-ilsr``         ``choix.ilsr_pairwise`` (dense Markov chain + LU)
=====================  =====================================================

Every pycomp / NumPy / SciPy provider minimises the same PoE-BT objective
(virtual-games prior, ``alpha``) to ``||grad F||_inf <= tol``. choix has no
such prior and no soft outcomes: it is run on hard outcomes with its own
regulariser set to match the curvature of the virtual-games prior at
``s = 0`` and its own stopping rule, and its scores are compared with the
PoE-BT optimum (Spearman, max abs difference); see the notes written into
``solve.md``. The achieved ``||grad F||_inf`` of every provider is computed
by one function, :func:`baselines.poe_bt_grad`, on the returned scores.

Each (provider, size, outcome) is measured in a fresh Python subprocess:
the input arrays are loaded, the RSS is read, then one warm-up and up to
``--repeats`` timed solves run; peak memory is the kernel's high-water RSS
during the solves minus that baseline. Rows are upserted into
``<out>/solve.json`` and ``<out>/solve.csv`` keyed by (op, provider, size,
outcome, device, commit) and ``<out>/solve.md`` is regenerated.

Examples
--------
Full run (the lead's quiet machine, about 12-15 minutes on 2 cores)::

    python bench/bench_solve.py

A quick check::

    python bench/bench_solve.py --sizes 2k/40k --repeats 3 --budget 60
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import baselines  # noqa: E402
from utils import (  # noqa: E402
    PeakRSS,
    device_name,
    fmt_seconds,
    format_count,
    git_commit,
    load_rows,
    machine_info,
    markdown_table,
    measure_bandwidth,
    parse_count,
    rss_bytes,
    run_worker,
    summarize_times,
    time_runs,
    upsert_rows,
)

OP = "solve"
KEY = ("op", "provider", "size", "outcome", "device", "commit")
SOFT_NOISE_SD = 0.5
DENSE_MAX_ITEMS = 20_000  # choix-opt / choix-ilsr build dense n x n matrices
PASS_ITERS = 10  # minimum extra MM sweeps used to time one data pass
PASS_TARGET_S = 0.25  # ... and enough of them to take about this long
THREAD_ENV_PREFIXES = ("OMP_", "GOMP_", "OPENBLAS_", "MKL_", "BLIS_")


@dataclass(frozen=True)
class Provider:
    """A benchmarked solver.

    Attributes
    ----------
    name : str
        Provider key in the results.
    family : {"pycomp", "numpy", "choix"}
    objective : str
        What it minimises, for the table notes.
    threads : str
        Threads it uses.
    """

    name: str
    family: str
    objective: str
    threads: str


POE = "PoE-BT (virtual games, alpha)"
PROVIDERS = {
    p.name: p
    for p in [
        Provider("pycomp-auto", "pycomp", POE, "all (OpenMP)"),
        Provider("pycomp-newton", "pycomp", POE, "all (OpenMP)"),
        Provider("pycomp-mm", "pycomp", POE, "all (OpenMP)"),
        Provider("pycomp-newman", "pycomp", POE, "all (OpenMP)"),
        Provider("numpy-newton-pcg", "numpy", POE, "1 (NumPy)"),
        Provider("scipy-sparse-newton-pcg", "numpy", POE, "1 (SciPy sparse)"),
        Provider("numpy-newman", "numpy", POE, "1 (NumPy)"),
        Provider("scipy-lbfgsb", "numpy", POE, "1 (NumPy)"),
        Provider("choix-mm", "choix", "BT + gamma prior, alpha_choix = alpha/2", "1 (Python)"),
        Provider("choix-mm-exact", "choix", "BT + gamma prior, alpha_choix = alpha/2", "1 (Python)"),
        Provider("choix-opt", "choix", "BT + L2 penalty, alpha_choix = alpha/4", "1 + BLAS"),
        Provider("choix-ilsr", "choix", "BT + alpha/n rate on every pair", "1 + BLAS/LAPACK"),
    ]
}


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def make_comparisons(
    n_items: int, n_comparisons: int, outcome: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Random comparisons under a Bradley-Terry model.

    True scores ``s ~ N(0, 1)``; pairs ``(i, j)`` uniform over ``i != j``.
    Hard: the first item wins with probability ``sig(s_i - s_j)`` and the
    pair is ordered winner first (``p = None``). Soft:
    ``p = sig(s_i - s_j + e)``, ``e ~ N(0, 0.5^2)``, clipped to [0, 1].
    The generator is seeded by ``(seed, n_items, n_comparisons, outcome)``,
    so a case's data do not depend on which other cases run.

    Parameters
    ----------
    n_items : int
    n_comparisons : int
    outcome : {"hard", "soft"}
    seed : int, default 0

    Returns
    -------
    i, j : ndarray of int64, shape (n_comparisons,)
    p : ndarray of float64, shape (n_comparisons,), or None (hard)
    true_scores : ndarray of float64, shape (n_items,)
    """
    from scipy.special import expit  # noqa: PLC0415

    if outcome not in ("hard", "soft"):
        raise ValueError(f"outcome must be 'hard' or 'soft', got {outcome!r}")
    rng = np.random.default_rng([seed, n_items, n_comparisons, outcome == "soft"])
    s = rng.standard_normal(n_items)
    i = rng.integers(0, n_items, n_comparisons)
    j = (i + rng.integers(1, n_items, n_comparisons)) % n_items
    d = s[i] - s[j]
    if outcome == "hard":
        first_wins = rng.random(n_comparisons) < expit(d)
        return np.where(first_wins, i, j), np.where(first_wins, j, i), None, s
    p = np.clip(expit(d + SOFT_NOISE_SD * rng.standard_normal(n_comparisons)), 0.0, 1.0)
    return i, j, p, s


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """Parse ``"10k/200k,100k/2M"`` into ``[(10000, 200000), (100000, 2000000)]``.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of (n_items, n_comparisons)
    """
    out = []
    for part in text.split(","):
        if "/" not in part:
            raise ValueError(f"size {part!r} must be N_ITEMS/N_COMPARISONS, e.g. 10k/200k")
        n, m = part.split("/", 1)
        out.append((parse_count(n), parse_count(m)))
    return sorted(out, key=lambda t: (t[1], t[0]))


def size_label(n: int, m: int) -> str:
    """``(10000, 200000) -> "10k/200k"``."""
    return f"{format_count(n)}/{format_count(m)}"


# --------------------------------------------------------------------------
# worker (one provider, one case, fresh process)
# --------------------------------------------------------------------------


class _OverBudget(Exception):
    """Raised inside a choix inner step once the per-run budget is spent."""


class _Reached(Exception):
    """Raised inside a choix inner step once its scores are accurate enough."""

    def __init__(self, params):
        super().__init__()
        self.params = params


# choix-mm-exact stops when max |s - s*| <= EXACT_ATOL, s* the exact fixed point of
# choix's own MM iteration. pycomp's Newton at tol 1e-8 lands within about 1e-9.
EXACT_ATOL = 1e-6


def choix_mm_fixed_point(n: int, i: np.ndarray, j: np.ndarray, alpha_choix: float, tol: float = 1e-12,
                         max_iter: int = 200_000) -> np.ndarray:
    """The fixed point of ``choix.mm_pairwise``'s iteration, by the same update vectorised.

    choix's step (``choix.mm._mm_pairwise`` then ``log_transform``): with
    ``w = exp_transform(s)``, ``s <- centre(log((wins + a) / (denoms + a)))``,
    ``denoms_k = sum over k's comparisons of 1 / (w_winner + w_loser)``. Iterated with
    ``np.bincount`` until the largest change is below ``tol``.
    """
    wins = np.bincount(i, minlength=n).astype(float)
    s = np.zeros(n)
    for _ in range(max_iter):
        w = np.exp(s - s.mean())
        w *= n / w.sum()
        v = 1.0 / (w[i] + w[j])
        den = np.bincount(i, v, n) + np.bincount(j, v, n)
        new = np.log((wins + alpha_choix) / (den + alpha_choix))
        new -= new.mean()
        step = float(np.abs(new - s).max())
        s = new
        if step < tol:
            return s
    raise RuntimeError(f"choix's MM fixed point not reached in {max_iter} vectorised sweeps (last step {step:.1e})")


def _choix_runner(name: str, n: int, i: np.ndarray, j: np.ndarray, alpha: float, tol: float, state: dict):
    """choix call with an iteration counter and a budget check per step.

    choix returns no iteration count and cannot be interrupted; its public
    functions look their inner step up in the module at call time, so a
    thin wrapper around that step counts iterations, keeps the latest
    iterate and stops the run when ``state["deadline"]`` has passed. The
    per-iteration work is choix's own.
    """
    import choix  # noqa: PLC0415
    import choix.lsr  # noqa: PLC0415
    import choix.mm  # noqa: PLC0415
    import choix.opt  # noqa: PLC0415

    data = list(zip(i.tolist(), j.tolist()))  # choix's (winner, loser) format

    def tick(params):
        if time.perf_counter() > state["deadline"]:
            raise _OverBudget
        state["iters"] += 1
        if params is not None:
            state["last"] = np.array(params, dtype=float)

    if name == "choix-mm":
        inner = choix.mm._mm_pairwise

        def step(n_items, data_, params):
            tick(params)
            return inner(n_items, data_, params)

        choix.mm._mm_pairwise = step
        return data, lambda: choix.mm_pairwise(n, data, alpha=alpha / 2, tol=tol)
    if name == "choix-mm-exact":
        inner = choix.mm._mm_pairwise
        target = state["exact"]

        def step(n_items, data_, params):
            if params is not None:
                t0 = time.perf_counter()
                cur = np.asarray(params, dtype=float)
                err = float(np.abs((cur - cur.mean()) - target).max())
                state["check_s"] += time.perf_counter() - t0
                state["error"] = err
                if err <= EXACT_ATOL:
                    raise _Reached(cur)
            tick(params)
            return inner(n_items, data_, params)

        choix.mm._mm_pairwise = step

        def run():
            try:
                return choix.mm_pairwise(n, data, alpha=alpha / 2, tol=0.0, max_iter=10**9)
            except _Reached as hit:
                return hit.params

        return data, run
    if name == "choix-ilsr":
        inner_lsr = choix.lsr.lsr_pairwise

        def lsr(*args, **kw):
            tick(kw.get("initial_params"))
            return inner_lsr(*args, **kw)

        choix.lsr.lsr_pairwise = lsr
        return data, lambda: choix.ilsr_pairwise(n, data, alpha=alpha / n, tol=tol)
    if name == "choix-opt":
        base = choix.opt.PairwiseFcts

        class Fcts(base):  # counts Newton steps (Hessian evaluations)
            def objective(self, params):
                if time.perf_counter() > state["deadline"]:
                    raise _OverBudget
                return super().objective(params)

            def gradient(self, params):
                if time.perf_counter() > state["deadline"]:
                    raise _OverBudget
                state["last"] = np.array(params, dtype=float)
                return super().gradient(params)

            def hessian(self, params):
                tick(params)
                return super().hessian(params)

        choix.opt.PairwiseFcts = Fcts
        return data, lambda: choix.opt_pairwise(n, data, alpha=alpha / 4, tol=tol)
    raise ValueError(f"unknown choix provider {name!r}")


def worker_main(spec_path: str) -> None:
    """Measure one provider on one case; write a JSON result and the scores.

    Parameters
    ----------
    spec_path : str
        JSON file written by the parent (provider, data directory, budgets).
    """
    with open(spec_path) as fh:
        spec = json.load(fh)
    name = spec["provider"]
    prov = PROVIDERS[name]
    data_dir = Path(spec["data_dir"])
    n = int(spec["n_items"])
    alpha, tol = float(spec["alpha"]), float(spec["tol"])
    i = np.load(data_dir / "i.npy")
    j = np.load(data_dir / "j.npy")
    p = np.load(data_dir / "p.npy") if (data_dir / "p.npy").exists() else None
    state = {"iters": 0, "last": None, "deadline": np.inf, "check_s": 0.0}
    if name == "choix-mm-exact":  # the target, computed before any timing
        t0 = time.perf_counter()
        state["exact"] = choix_mm_fixed_point(n, i, j, alpha / 2)
        out_exact_s = time.perf_counter() - t0
    else:
        out_exact_s = None
    warmup, repeats = spec["warmup"], spec["repeats"]
    out: dict = {"provider": name}

    if prov.family == "pycomp":
        import pycomp  # noqa: PLC0415

        method = name.split("-", 1)[1]

        def solve_fn(max_iter=None):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning: recorded below
                return pycomp.solve(
                    i, j, p, n_items=n, method=method, alpha=alpha, tol=tol,
                    max_iter=max_iter, n_threads=spec.get("n_threads"), device="cpu",
                )

        fn = solve_fn
    elif name == "scipy-sparse-newton-pcg":
        fn = lambda: baselines.newton_pcg(i, j, p, n_items=n, alpha=alpha, tol=tol, sparse=True)  # noqa: E731
    elif name == "numpy-newton-pcg":
        fn = lambda: baselines.newton_pcg(i, j, p, n_items=n, alpha=alpha, tol=tol)  # noqa: E731
    elif name == "numpy-newman":
        fn = lambda: baselines.newman(i, j, p, n_items=n, alpha=alpha, tol=tol)  # noqa: E731
    elif name == "scipy-lbfgsb":
        fn = lambda: baselines.lbfgsb(i, j, p, n_items=n, alpha=alpha, tol=tol)  # noqa: E731
    else:
        data, fn = _choix_runner(name, n, i, j, alpha, tol, state)
        warmup, repeats = 0, 1  # tens of seconds per run: one cold run

    gc.collect()
    base_rss = rss_bytes()
    peaks: list[int] = []
    mem = {}

    def before():
        gc.collect()
        state["iters"] = 0
        state["deadline"] = time.perf_counter() + spec["budget_s"]
        mem["ctx"] = PeakRSS().__enter__()

    def after(_res, _dt):
        mem["ctx"].__exit__(None, None, None)
        peaks.append(mem["ctx"].peak)

    status, message = "ok", ""
    t0 = time.perf_counter()
    try:
        timing = time_runs(
            fn, repeats=repeats, warmup=warmup, case_budget_s=spec["case_budget_s"],
            long_run_s=spec["long_run_s"], before_each=before, after_each=after,
        )
        res = timing.last
    except _OverBudget:
        mem["ctx"].__exit__(None, None, None)
        peaks.append(mem["ctx"].peak)
        timing, res = None, None
        status = "timeout"
        message = f"stopped at the {spec['budget_s']:.0f} s budget after {state['iters']} iterations"
        if state.get("error") is not None:
            message += f", max |s - s*| = {state['error']:.1e} (target {EXACT_ATOL:.0e})"
        out["elapsed_s"] = time.perf_counter() - t0
    except RuntimeError as exc:  # choix: "Did not converge after N iterations"
        mem["ctx"].__exit__(None, None, None)
        peaks.append(mem["ctx"].peak)
        timing, res = None, None
        status, message = "not converged", str(exc)
        out["elapsed_s"] = time.perf_counter() - t0

    out["status"], out["message"] = status, message
    out["base_rss_bytes"] = base_rss
    out["peak_delta_bytes"] = max(peaks) - base_rss if peaks else None
    out["mem_method"] = mem["ctx"].method if "ctx" in mem else None
    if timing is not None:
        times = list(timing.times)
        if name == "choix-mm-exact":  # the accuracy checks are not choix's work
            times = [t - state["check_s"] for t in times]
        out.update(
            times_s=times, warmup_s=timing.warmup_s, warmup_counted=timing.warmup_counted,
        )
    if name == "choix-mm-exact":
        out["exact_error"] = state.get("error")
        out["exact_check_s"] = state["check_s"]
        out["exact_reference_s"] = out_exact_s
    scores = None
    if prov.family == "choix":
        out["n_iter"] = state["iters"]
        scores = np.asarray(res, dtype=float) if res is not None else state["last"]
        out["converged_own"] = res is not None
    elif res is not None:
        scores = np.asarray(res.scores, dtype=float)
        out.update(
            n_iter=int(res.n_iter), converged=bool(res.converged), solver_grad_norm=float(res.grad_norm),
            objective=float(res.objective), method=str(res.method),
        )
        if getattr(res, "n_inner", None) is not None:
            out["n_inner"] = int(res.n_inner)
        if getattr(res, "message", None):
            out["message"] = str(res.message)
    if scores is not None:
        np.save(spec["scores_path"], scores)
        out["scores_path"] = spec["scores_path"]

    # Time of one pass over the comparisons: (T(1 + K sweeps) - T(1 sweep)) / K, with K
    # chosen so that the K sweeps take about PASS_TARGET_S (and stay below convergence).
    if name == "pycomp-mm" and spec.get("pass_iters") and status == "ok" and out.get("n_iter", 0) >= 3:
        def med(k: int) -> float:
            ts = []
            for _ in range(3):
                t = time.perf_counter()
                fn(max_iter=k)
                ts.append(time.perf_counter() - t)
            return float(np.median(ts))

        t_sweep = float(np.median(timing.times)) / out["n_iter"]  # upper bound: includes set-up
        k = int(np.clip(PASS_TARGET_S / t_sweep, spec["pass_iters"], 5000))
        k = max(1, min(k, out["n_iter"] - 2))
        t1, tk = med(1), med(1 + k)
        out["pass_k"] = k
        out["pass_s"] = max(tk - t1, 0.0) / k
        out["pass_t1_s"], out["pass_tk_s"] = t1, tk
    with open(spec["result_path"], "w") as fh:
        json.dump(out, fh)


# --------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------


def pass_bytes(n_items: int, n_comparisons: int, soft: bool, weighted: bool = False) -> int:
    """Bytes one pycomp sweep must stream from the comparison arrays.

    The core reads ``i`` and ``j`` as int32 and ``p`` / ``w`` as float64
    (``csrc/core/common.h``), once per sweep. Item vectors (scores, the
    per-thread scatter buffers) add ``O(n_items)`` traffic and the score
    gathers are random accesses; neither is counted, so this is a lower
    bound on the traffic and the derived bandwidth is conservative.

    Parameters
    ----------
    n_items, n_comparisons : int
    soft : bool
        Whether a ``p`` array is read.
    weighted : bool, default False

    Returns
    -------
    int
    """
    del n_items
    return n_comparisons * (4 + 4 + 8 * soft + 8 * weighted)


def _check_yardstick() -> str:
    """Check :func:`baselines.poe_bt_grad` against ``tests/reference.py``."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    try:
        import reference  # noqa: PLC0415
    except Exception as exc:  # noqa: BLE001  (tests may be absent in an sdist)
        return f"not checked (tests/reference.py not importable: {type(exc).__name__})"
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(7)
    worst = 0.0
    for soft in (False, True):
        n, m = 37, 500
        i = rng.integers(0, n, m)
        j = (i + rng.integers(1, n, m)) % n
        p = rng.random(m) if soft else None
        w = rng.random(m) * 2
        s = rng.standard_normal(n) * 2
        c = reference.Comparisons.make(i, j, p, w, n_items=n)
        worst = max(worst, float(np.abs(reference.bt_gradient(s, c, 0.7) - baselines.poe_bt_grad(s, i, j, p, w, 0.7)).max()))
        df = abs(reference.bt_objective(s, c, 0.7) - baselines.poe_bt_objective(s, i, j, p, w, 0.7))
        worst = max(worst, df)
    if worst > 1e-9:
        raise AssertionError(f"baselines.poe_bt_grad disagrees with tests/reference.py by {worst:.3g}")
    return f"agrees with tests/reference.py bt_gradient/bt_objective (max abs diff {worst:.1e})"


def _skip_reason(prov: Provider, n: int, m: int, outcome: str, history: dict, budget: float) -> str | None:
    """Why a provider is not run on this case, or None."""
    if prov.family == "choix" and outcome == "soft":
        return "choix's pairwise API takes hard (winner, loser) outcomes only"
    if prov.name in ("choix-opt", "choix-ilsr") and n > DENSE_MAX_ITEMS:
        gb = 8 * n * n / 1e9
        what = "Hessian" if prov.name == "choix-opt" else "Markov chain (plus an O(n^3) LU per iteration)"
        return f"dense n x n {what}: {gb:,.0f} GB per matrix"
    prev = history.get((prov.name, outcome))
    if prev is not None:
        label, m_prev, status, t_prev = prev
        if status in ("timeout", "killed"):
            return f"exceeded the {budget:.0f} s budget at the smaller size {label}"
        if t_prev is not None:
            proj = t_prev * m / m_prev
            if proj > budget:
                return (
                    f"projected >= {proj:,.0f} s per solve (linear in m from {t_prev:.3g} s at {label})"
                    f" > the {budget:.0f} s budget"
                )
    return None


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr  # noqa: PLC0415

    return float(spearmanr(a, b).statistic)


def run_case(args, n: int, m: int, outcome: str, providers: list[Provider], history: dict,
             common: dict, tmp: Path) -> list[dict]:
    """Generate one case's data and measure every provider on it."""
    label = size_label(n, m)
    i, j, p, _ = make_comparisons(n, m, outcome, args.seed)
    case_dir = tmp / f"{label.replace('/', '_')}_{outcome}"
    case_dir.mkdir(parents=True, exist_ok=True)
    np.save(case_dir / "i.npy", i)
    np.save(case_dir / "j.npy", j)
    if p is not None:
        np.save(case_dir / "p.npy", p)
    rows = []
    for prov in providers:
        row = dict(common, provider=prov.name, size=label, n_items=n, n_comparisons=m, outcome=outcome,
                   objective_solved=prov.objective, threads=prov.threads)
        budget = args.exact_budget if prov.name == "choix-mm-exact" else args.budget
        reason = _skip_reason(prov, n, m, outcome, history, budget)
        if reason is None and prov.family == "pycomp" and not common["_pycomp_ok"]:
            reason = "pycomp.solve is not available in this build"
        if reason is not None:
            row.update(status="skipped", reason=reason)
            rows.append(row)
            print(f"  {prov.name:17s} skipped: {reason}", flush=True)
            continue
        spec = dict(
            provider=prov.name, data_dir=str(case_dir), n_items=n, alpha=args.alpha, tol=args.tol,
            repeats=args.repeats, warmup=args.warmup, case_budget_s=args.case_budget,
            long_run_s=args.long_run, budget_s=budget, n_threads=args.threads,
            pass_iters=PASS_ITERS, result_path=str(case_dir / f"{prov.name}.json"),
            scores_path=str(case_dir / f"{prov.name}.scores.npy"),
        )
        spec_path = case_dir / f"{prov.name}.spec.json"
        spec_path.write_text(json.dumps(spec))
        hard_limit = budget + max(args.case_budget, args.long_run) + 90
        wr = run_worker([__file__, "--worker", str(spec_path)], spec["result_path"], timeout_s=hard_limit,
                        env={"PYTHONWARNINGS": "ignore"})
        if wr.status == "killed":
            row.update(status="timeout", reason=f"killed after {wr.wall_s:.0f} s (budget {budget:.0f} s per solve)")
            history[(prov.name, outcome)] = (label, m, "killed", None)
        elif wr.status == "error":
            last = wr.stderr_tail.strip().splitlines()[-1:] or ["no output"]
            row.update(status="error", reason=last[0][:300], stderr_tail=wr.stderr_tail[-2000:])
        else:
            res = wr.payload
            row.update({k: v for k, v in res.items() if k not in ("provider", "scores_path")})
            if res.get("times_s"):
                row.update(summarize_times(res["times_s"]))
                row["n_repeats"] = len(res["times_s"])
            if res.get("peak_delta_bytes") is not None:
                row["peak_mem_mb"] = round(res["peak_delta_bytes"] / 2**20, 1)
            row["status"] = res["status"]
            if res["status"] != "ok":
                row["reason"] = res.get("message", "")
            if res.get("scores_path"):
                row["_scores"] = np.load(res["scores_path"])
            t_hist = row.get("median_s")
            history[(prov.name, outcome)] = (label, m, row["status"], t_hist)
            if "pass_s" in res and res["pass_s"] > 0:
                nbytes = pass_bytes(n, m, soft=p is not None)
                gbps = nbytes / res["pass_s"] / 1e9
                row["pass_bytes"] = nbytes
                row["pass_gbps"] = round(gbps, 2)
                row["bandwidth_gbps"] = common["_bandwidth"]
                row["pass_frac_of_bandwidth"] = round(gbps / common["_bandwidth"], 3)
        row["loadavg_1m"] = round(os.getloadavg()[0], 2)
        _report_line(row)
        rows.append(row)
    _agreement(rows, i, j, p, args.alpha)
    for r in rows:
        r.pop("_scores", None)
    return rows


def _agreement(rows: list[dict], i, j, p, alpha: float) -> None:
    """Shared-yardstick gradient and agreement with the reference optimum."""
    have = [r for r in rows if r.get("_scores") is not None]
    for r in have:
        s = r["_scores"]
        r["grad_inf"] = float(np.abs(baselines.poe_bt_grad(s, i, j, p, None, alpha)).max())
        if r["provider"] == "choix-opt" and p is None:
            r["grad_inf_own"] = float(np.abs(baselines.l2_bt_grad(s, i, j, alpha / 4)).max())
    poe = [r for r in have if PROVIDERS[r["provider"]].family != "choix"]
    if not poe:
        return
    auto = [r for r in poe if r["provider"] == "pycomp-auto" and r.get("converged")]
    ref = auto[0] if auto else min(poe, key=lambda r: r["grad_inf"])
    s_ref = ref["_scores"] - ref["_scores"].mean()
    for r in have:
        s = r["_scores"] - r["_scores"].mean()
        r["ref_provider"] = ref["provider"]
        r["spearman_vs_ref"] = round(_spearman(s, s_ref), 6)
        r["maxabs_vs_ref"] = float(np.abs(s - s_ref).max())


def _report_line(row: dict) -> None:
    t = fmt_seconds(row.get("median_s")) or "-"
    extra = row.get("reason") or row.get("message") or ""
    print(f"  {row['provider']:17s} {row['status']:13s} median {t:>9s}  iters {row.get('n_iter', '-')!s:>5s}"
          f"  peak +{row.get('peak_mem_mb', '-')} MiB  {extra[:90]}", flush=True)


# --------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------


def _g(x: float | None) -> str | None:
    return None if x is None else f"{x:.1e}"


def write_markdown(path: Path, meta: dict, rows: list[dict]) -> None:
    """Regenerate ``solve.md`` from the rows of the current commit and device.

    Parameters
    ----------
    path : Path
    meta : dict
        The results file's meta (machine, bandwidth, settings).
    rows : list of dict
        All rows of the results file.
    """
    commit, device = meta.get("commit"), meta.get("device")
    rows = [r for r in rows if r.get("commit") == commit and r.get("device") == device and r.get("op") == OP]
    order = list(PROVIDERS)
    rows.sort(key=lambda r: (r["n_comparisons"], r["n_items"], r["outcome"] != "hard", order.index(r["provider"])))
    table = []
    for r in rows:
        t = r.get("median_s")
        if t is None and r.get("elapsed_s") is not None:
            t_txt = f">{fmt_seconds(r['elapsed_s'])}"
        else:
            t_txt = fmt_seconds(t)
        conv = r.get("converged")
        if conv is None and "converged_own" in r:
            conv = "own rule" if r["converged_own"] else "no"
            if r["provider"] == "choix-mm-exact":
                conv = f"max abs to s* <= {EXACT_ATOL:.0e}" if r["converged_own"] else "no"
        table.append({
            "size": r["size"], "outcome": r["outcome"],
            "provider": r["provider"] + (f" ({r['method']})" if r["provider"] == "pycomp-auto" and r.get("method") else ""),
            "median": t_txt,
            "p20-p80": (f"{fmt_seconds(r['p20_s'])} - {fmt_seconds(r['p80_s'])}" if r.get("p20_s") is not None else None),
            "n": r.get("n_repeats"),
            "iters": r.get("n_iter") if r.get("n_inner") in (None, 0, r.get("n_iter")) else f"{r['n_iter']} ({r['n_inner']})",
            "grad": _g(r.get("grad_inf")),
            "conv": {True: "yes", False: "no"}.get(conv, conv),
            "rho": None if r.get("spearman_vs_ref") is None else f"{r['spearman_vs_ref']:.6f}",
            "dmax": _g(r.get("maxabs_vs_ref")),
            "mem": r.get("peak_mem_mb"),
            "status": r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('reason', '')}",
        })
    cols = [("size", "size"), ("outcome", "outcome"), ("provider", "provider"), ("median", "median"),
            ("p20 - p80", "p20-p80"), ("runs", "n"), ("iters (inner)", "iters"),
            ("‖∇F‖∞ (PoE-BT)", "grad"), ("converged", "conv"), ("Spearman vs ref", "rho"),
            ("max abs Δs vs ref", "dmax"), ("peak ΔRSS (MiB)", "mem"), ("status", "status")]

    lines = [
        "# Solver benchmark: `pycomp.solve` vs baselines",
        "",
        f"Generated by `bench/bench_solve.py` at commit `{commit}` on `{device}` "
        f"({meta.get('date', '')}). Command: `{meta.get('command', '')}`",
        "",
        f"Objective: PoE-BT, alpha = {meta.get('alpha')}, tolerance ‖∇F‖∞ ≤ {meta.get('tol')}. "
        f"Load average when the run started: {meta.get('machine', {}).get('loadavg_1m', 0):.2f}.",
        "",
        "## Speed-ups (the issue's targets)",
        "",
    ]
    load = [r["loadavg_1m"] for r in rows if r.get("loadavg_1m") is not None]
    n_cpus = meta.get("machine", {}).get("n_cpus") or 1
    if load and max(load) > 0.5 * n_cpus:
        lines[-3:-3] = [
            "",
            f"**Warning: the machine was busy** (1-minute load average up to {max(load):.1f} on {n_cpus} cores"
            " during the run; this benchmark's own solves add up to 1-2). Timings, multi-threaded ones most of all,"
            " are not representative.",
            "",
        ]
    lines += _speedups(rows)
    lines += ["", "## Results", "", markdown_table(table, cols), ""]
    lines += _pass_table(rows, meta)
    lines += [
        "",
        "## Notes",
        "",
        "- **Timing.** Median and p20/p80 over timed runs; one warm-up run is discarded. Fewer runs at large"
        f" sizes: at most `--case-budget` ({meta.get('case_budget_s')} s) of timed runs per case, and a first"
        f" run of {meta.get('long_run_s')} s or more is kept as the only sample (start-up effects are negligible"
        " next to it). choix: one cold run. Each provider runs in a fresh subprocess on the same arrays"
        " (int64 `i`, `j`; float64 `p` for soft outcomes; hard outcomes are passed winner-first with `p=None`).",
        "- **Memory.** Peak ΔRSS = kernel high-water RSS during the solves (reset with `/proc/self/clear_refs`)"
        " minus the RSS after the inputs were loaded (and, for choix, converted to its list of (winner, loser)"
        " tuples). It includes each provider's own copies of the input (e.g. pycomp's int32 indices).",
        "- **Accuracy yardstick.** ‖∇F‖∞ is computed for every provider by one function,"
        " `bench/baselines.py::poe_bt_grad`, on the returned scores; " + str(meta.get("yardstick", "")) + "."
        " The reference optimum (ref) is pycomp-auto's when it converged, else the provider with the smallest"
        " ‖∇F‖∞; max abs Δs is taken after centring both score vectors to mean 0 (choix returns mean-0 scores).",
        "- **What each provider optimises.** pycomp-*, numpy-newton-pcg, numpy-newman and scipy-lbfgsb minimise"
        " the same PoE-BT objective and stop at ‖∇F‖∞ ≤ tol (scipy-lbfgsb: `gtol=tol`, `ftol=0`; it stops"
        " earlier when F no longer decreases in float64, and its achieved ‖∇F‖∞ is reported as is)."
        " choix has neither soft outcomes nor the virtual-games prior, so it runs on hard outcomes only, with"
        " its own regulariser set to match the prior's curvature at s = 0 (the prior's Hessian is alpha/2):"
        " `mm_pairwise(alpha=alpha/2)` (a gamma prior on exp(s), centred every sweep),"
        " `opt_pairwise(alpha=alpha/4)` (L2 penalty alpha/4·‖s‖², SciPy Newton-CG, dense Hessian, `tol`=xtol),"
        " `ilsr_pairwise(alpha=alpha/n)` (rate alpha/n on every pair of the Markov chain, dense LU). Each stops"
        " by its own rule (mm/ilsr: mean |Δs| between sweeps ≤ tol). Their ‖∇F‖∞ under PoE-BT is therefore not"
        " small; their scores are compared with the PoE-BT optimum by Spearman and max abs Δs, and choix-opt's"
        " gradient of its own objective is reported below. The speed-up against choix is time to its own"
        " convergence, not to equal PoE-BT accuracy.",
        "- **Budgets.** A solve is limited to `--budget` seconds: choix is stopped in-process at its next"
        " inner step (iterations so far and the scores reached are still reported), other providers are killed;"
        " a provider projected (linearly in m from the previous size) to exceed the budget, or that exceeded it"
        " at a smaller size, is skipped with the reason. choix-opt and choix-ilsr form dense n x n matrices and"
        f" are skipped above {DENSE_MAX_ITEMS:,} items.",
        "- **Threads.** pycomp uses all cores (OpenMP); NumPy's `bincount`/ufuncs are single-threaded; choix's"
        " dense linear algebra uses the BLAS threads.",
    ]
    own = [r for r in rows if r.get("grad_inf_own") is not None]
    if own:
        lines += ["", "choix-opt, gradient of its own objective (L2-penalised BT): " + ", ".join(
            f"{r['size']}: {r['grad_inf_own']:.1e}" for r in own)]
    bw = meta.get("bandwidth", {})
    lines += ["", "## Machine", "", "```", json.dumps({**meta.get("machine", {}), "bandwidth_gbps": bw,
                                                      "versions": meta.get("versions", {}),
                                                      "thread_env": meta.get("env", {}),
                                                      "pycomp_build": meta.get("pycomp_build")}, indent=1), "```", ""]
    path.write_text("\n".join(lines))


def _speedups(rows: list[dict]) -> list[str]:
    by = {(r["size"], r["outcome"], r["provider"]): r for r in rows}
    out = []
    pyc = ["pycomp-auto", "pycomp-newton", "pycomp-mm", "pycomp-newman"]

    def t(size, outcome, prov):
        r = by.get((size, outcome, prov))
        return None if r is None else r.get("median_s")

    for size, outcome, base, target, label in [
        ("1M/10M", "hard", ["numpy-newton-pcg"], 10, "vs NumPy Newton-PCG at 1M/10M hard"),
        ("1M/10M", "soft", ["numpy-newton-pcg"], None, "vs NumPy Newton-PCG at 1M/10M soft"),
        ("10k/200k", "hard", ["choix-mm-exact"], 1000,
         f"vs choix at equal accuracy at 10k/200k hard (choix-mm run to within {EXACT_ATOL:.0e} of its own optimum)"),
        ("10k/200k", "hard", ["choix-mm", "choix-opt", "choix-ilsr"], None,
         "vs choix's fastest at its own stopping rule at 10k/200k hard (looser accuracy)"),
    ]:
        t_auto = t(size, outcome, "pycomp-auto")
        best_p = min(((t(size, outcome, q), q) for q in pyc if t(size, outcome, q)), default=(None, None))
        done = [(t(size, outcome, b), b) for b in base if t(size, outcome, b)]
        over = [by[(size, outcome, b)] for b in base if (size, outcome, b) in by
                and by[(size, outcome, b)]["status"] in ("timeout",) and by[(size, outcome, b)].get("elapsed_s")]
        if t_auto is None or (not done and not over):
            out.append(f"- {label}: not measured in this run.")
            continue
        if done:
            tb, bname = min(done)
            ratio = tb / t_auto
            s = f"- {label}: {bname} {fmt_seconds(tb)} / pycomp-auto {fmt_seconds(t_auto)} = **{ratio:,.0f}x**"
        else:
            r0 = min(over, key=lambda r: r["elapsed_s"])
            ratio = r0["elapsed_s"] / t_auto
            s = (f"- {label}: every choix solver exceeded the budget; {r0['provider']} stopped at"
                 f" {r0['elapsed_s']:.0f} s, so **> {ratio:,.0f}x**")
        if best_p[0] is not None and best_p[1] != "pycomp-auto" and done:
            s += f" (fastest pycomp method, {best_p[1]}: {tb / best_p[0]:,.0f}x)"
        if target:
            s += f"; target >= {target}x: {'met' if ratio >= target else 'NOT met'}"
        out.append(s + ".")
    return out


def _pass_table(rows: list[dict], meta: dict) -> list[str]:
    pr = [r for r in rows if r.get("pass_s")]
    if not pr:
        return []
    bw = meta.get("bandwidth", {})
    tab = [{
        "size": r["size"], "outcome": r["outcome"], "pass": fmt_seconds(r["pass_s"]),
        "bytes": f"{r['pass_bytes'] / 1e6:,.3g} MB", "k": r.get("pass_k"), "gbps": r["pass_gbps"], "frac": f"{100 * r['pass_frac_of_bandwidth']:.0f}%",
    } for r in pr]
    return [
        "## One data pass vs memory bandwidth",
        "",
        "One pass = one pycomp MM sweep, timed as (T(max_iter=1+K) - T(max_iter=1)) / K (medians of 3, K extra"
        f" sweeps taking about {PASS_TARGET_S} s, at least {PASS_ITERS}), so set-up and the final objective"
        " evaluation cancel. Bytes = the comparison arrays the"
        " core streams per sweep (int32 i, j; float64 p when soft); score gathers and the per-item buffers are not"
        " counted, so the effective bandwidth is a lower bound. Machine bandwidth = best of a NumPy streaming"
        f" copy / sum on 1 and {bw.get('n_threads')} threads: {bw.get('best')} GB/s"
        f" (copy 1t {bw.get('copy_1t')}, read 1t {bw.get('read_1t')}, copy mt {bw.get('copy_mt')},"
        f" read mt {bw.get('read_mt')}).",
        "",
        markdown_table(tab, [("size", "size"), ("outcome", "outcome"), ("time per pass", "pass"),
                             ("K", "k"), ("bytes streamed", "bytes"), ("effective GB/s", "gbps"), ("of machine bandwidth", "frac")]),
        "",
    ]


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    v = {}
    for dist in ("numpy", "scipy", "choix", "psutil", "pycomp"):
        try:
            v[dist] = version(dist)
        except PackageNotFoundError:
            v[dist] = None
    return v


def build_parser() -> argparse.ArgumentParser:
    """Command-line interface.

    Returns
    -------
    argparse.ArgumentParser
    """
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--sizes", default="10k/200k,100k/2M,1M/10M", help="comma-separated N_ITEMS/N_COMPARISONS")
    ap.add_argument("--outcomes", default="hard,soft", help="comma-separated subset of hard,soft")
    ap.add_argument("--providers", default="all", help=f"comma-separated subset of {','.join(PROVIDERS)}")
    ap.add_argument("--repeats", type=int, default=5, help="maximum timed runs per case (warm-up excluded)")
    ap.add_argument("--warmup", type=int, default=1, help="discarded warm-up runs")
    ap.add_argument("--case-budget", type=float, default=20.0, help="seconds of timed runs per case")
    ap.add_argument("--long-run", type=float, default=10.0, help="a first run this long is the only sample")
    ap.add_argument("--budget", type=float, default=120.0, help="wall-clock limit of one solve, seconds")
    ap.add_argument("--exact-budget", type=float, default=600.0,
                    help="wall-clock limit of the choix-mm-exact solve (equal accuracy takes longer), seconds")
    ap.add_argument("--alpha", type=float, default=1.0, help="virtual-games prior strength")
    ap.add_argument("--tol", type=float, default=1e-8, help="gradient tolerance ||grad F||_inf")
    ap.add_argument("--threads", type=int, default=None, help="pycomp n_threads (default: all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results"), help="directory for solve.json/.csv/.md")
    ap.add_argument("--no-bandwidth", action="store_true", help="skip the memory-bandwidth measurement")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``, one measurement).

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
        Exit status.
    """
    args = build_parser().parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0
    sizes = parse_sizes(args.sizes)
    outcomes = [o.strip() for o in args.outcomes.split(",") if o.strip()]
    bad = [o for o in outcomes if o not in ("hard", "soft")]
    if bad:
        raise SystemExit(f"--outcomes: {bad} not in hard,soft")
    names = list(PROVIDERS) if args.providers == "all" else [x.strip() for x in args.providers.split(",")]
    unknown = [x for x in names if x not in PROVIDERS]
    if unknown:
        raise SystemExit(f"--providers: unknown {unknown}; choose from {','.join(PROVIDERS)}")
    providers = [PROVIDERS[x] for x in PROVIDERS if x in names]

    try:
        import pycomp  # noqa: PLC0415

        pycomp_ok = hasattr(pycomp, "solve")
        pycomp_build = pycomp.build_info() if hasattr(pycomp, "build_info") else None
    except ImportError:
        pycomp_ok, pycomp_build = False, None
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    commit, device = git_commit(HERE), device_name()
    t_start = time.perf_counter()
    yardstick = _check_yardstick()
    print(f"yardstick: {yardstick}", flush=True)
    bw = {"best": None} if args.no_bandwidth else measure_bandwidth()
    print(f"memory bandwidth (GB/s): {bw}", flush=True)
    meta = {
        "op": OP, "commit": commit, "device": device, "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": "python bench/bench_solve.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "alpha": args.alpha, "tol": args.tol, "case_budget_s": args.case_budget, "long_run_s": args.long_run,
        "budget_s": args.budget, "repeats": args.repeats, "machine": machine_info(), "bandwidth": bw,
        "versions": _versions(), "pycomp_build": pycomp_build, "yardstick": yardstick,
        "env": {k: v for k, v in os.environ.items() if k.startswith(THREAD_ENV_PREFIXES)},
    }
    common = {"op": OP, "device": device, "commit": commit, "_pycomp_ok": pycomp_ok, "_bandwidth": bw["best"]}
    json_path, csv_path, md_path = out_dir / "solve.json", out_dir / "solve.csv", out_dir / "solve.md"
    history: dict = {}
    with tempfile.TemporaryDirectory(prefix="pycomp_bench_solve_") as tmpdir:
        for n, m in sizes:
            for outcome in outcomes:
                print(f"== {size_label(n, m)} {outcome}", flush=True)
                rows = run_case(args, n, m, outcome, providers, history, common, Path(tmpdir))
                for r in rows:
                    r.pop("_pycomp_ok", None)
                    r.pop("_bandwidth", None)
                    r["alpha"], r["tol"] = args.alpha, args.tol
                all_rows = upsert_rows(json_path, rows, KEY, meta=meta, csv_path=csv_path)
                write_markdown(md_path, meta, all_rows)
    print(f"done in {time.perf_counter() - t_start:.0f} s; wrote {json_path}, {csv_path}, {md_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
