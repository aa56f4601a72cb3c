"""Generic helpers shared by the pycomp benchmarks (``bench/bench_*.py``).

Nothing here knows about a particular op. The pieces are:

* timing: :func:`time_runs` (warm-up excluded, adaptive repeat count) and
  :func:`summarize_times` (median, p20, p80);
* memory: :class:`PeakRSS`, the peak resident set size of *this* process
  during a block, reset at the start of the block (Linux ``clear_refs``);
* machine: :func:`git_commit`, :func:`device_name`, :func:`machine_info`,
  :func:`measure_bandwidth` (a NumPy streaming copy / sum);
* isolation: :func:`run_worker`, which runs one measurement in a fresh Python
  subprocess with a wall-clock limit and reads back its JSON result;
* results: :func:`upsert_rows` (JSON + CSV keyed rows, as Liger's
  ``all_benchmark_data.csv``) and :func:`markdown_table`;
* formatting: :func:`parse_count`, :func:`format_count`, :func:`fmt_seconds`.

Examples
--------
>>> from utils import time_runs, summarize_times
>>> res = time_runs(lambda: sum(range(1000)), repeats=5)
>>> sorted(summarize_times(res.times))
['median_s', 'p20_s', 'p80_s']
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TimingResult",
    "time_runs",
    "summarize_times",
    "rss_bytes",
    "PeakRSS",
    "git_commit",
    "device_name",
    "machine_info",
    "measure_bandwidth",
    "run_worker",
    "WorkerResult",
    "upsert_rows",
    "load_rows",
    "markdown_table",
    "parse_count",
    "format_count",
    "fmt_seconds",
]

# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------


@dataclass
class TimingResult:
    """Wall-clock times of repeated calls of one function.

    Attributes
    ----------
    times : list of float
        Timed runs in seconds (warm-up excluded unless ``warmup_counted``).
    warmup_s : float or None
        Duration of the discarded warm-up run, ``None`` if there was none.
    warmup_counted : bool
        True when the first run was slow enough (``>= long_run_s``) that
        it was kept as the only sample instead of being discarded.
    last : object
        Return value of the last call.
    extra : dict
        Free-form per-call information collected by the caller.
    """

    times: list[float]
    warmup_s: float | None
    warmup_counted: bool
    last: Any = None
    extra: dict = field(default_factory=dict)


def time_runs(
    fn: Callable[[], Any],
    *,
    repeats: int = 5,
    warmup: int = 1,
    case_budget_s: float = 20.0,
    long_run_s: float = 10.0,
    before_each: Callable[[], None] | None = None,
    after_each: Callable[[Any, float], None] | None = None,
) -> TimingResult:
    """Time ``fn()`` with warm-up runs excluded and an adaptive repeat count.

    The first ``warmup`` calls are discarded. If the first call took
    ``long_run_s`` seconds or more, one-off start-up costs are negligible
    against it, so it is kept as the only sample (``warmup_counted=True``)
    rather than spending another full run. Otherwise the number of timed
    repeats is ``clip(floor(case_budget_s / t_first), 1, repeats)``.

    Parameters
    ----------
    fn : callable
        Zero-argument function to time.
    repeats : int, default 5
        Maximum number of timed runs.
    warmup : int, default 1
        Number of discarded warm-up runs (0 disables the warm-up).
    case_budget_s : float, default 20.0
        Wall-clock budget for the timed runs of this case.
    long_run_s : float, default 10.0
        A first run at least this long is kept as the single sample.
    before_each : callable, optional
        Called (untimed) before every call, e.g. ``gc.collect``.
    after_each : callable, optional
        Called (untimed) after every call as ``after_each(result, seconds)``.

    Returns
    -------
    TimingResult
        Timed runs and the last return value.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")

    def one() -> tuple[Any, float]:
        if before_each is not None:
            before_each()
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        if after_each is not None:
            after_each(out, dt)
        return out, dt

    warm_times: list[float] = []
    out = None
    for _ in range(warmup):
        out, dt = one()
        warm_times.append(dt)
        if dt >= long_run_s:
            return TimingResult([dt], None, True, out)
    first = warm_times[0] if warm_times else None
    if first is None:
        n_rep = repeats
    else:
        n_rep = int(np.clip(case_budget_s // max(first, 1e-9), 1, repeats))
    times = []
    for _ in range(n_rep):
        out, dt = one()
        times.append(dt)
    return TimingResult(times, first, False, out)


def summarize_times(times: Sequence[float]) -> dict[str, float]:
    """Median and 20th / 80th percentiles of a list of run times.

    Parameters
    ----------
    times : sequence of float
        Run times in seconds (at least one).

    Returns
    -------
    dict
        ``{"median_s", "p20_s", "p80_s"}``.
    """
    a = np.asarray(times, dtype=float)
    if a.size == 0:
        raise ValueError("times is empty")
    p20, p50, p80 = np.quantile(a, [0.2, 0.5, 0.8])
    return {"median_s": float(p50), "p20_s": float(p20), "p80_s": float(p80)}


# --------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------


def _proc_status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Current resident set size of this process, in bytes.

    Returns
    -------
    int
        ``VmRSS`` from ``/proc/self/status`` (Linux), else psutil's value.
    """
    kb = _proc_status_kb("VmRSS")
    if kb is not None:
        return kb * 1024
    import psutil  # noqa: PLC0415  (optional dependency, only off Linux)

    return int(psutil.Process().memory_info().rss)


class PeakRSS:
    """Peak resident set size of this process during a ``with`` block.

    On Linux the kernel's high-water mark (``VmHWM``) is reset on entry by
    writing ``5`` to ``/proc/self/clear_refs`` and read on exit, which is
    exact and costs nothing during the block. Where that is not allowed, a
    background thread samples the RSS every ``interval_s`` seconds (which
    can miss short spikes; ``method`` says which was used).

    Parameters
    ----------
    interval_s : float, default 0.002
        Sampling period of the fallback sampler.

    Attributes
    ----------
    start : int
        RSS in bytes on entry.
    peak : int
        Peak RSS in bytes during the block.
    method : str
        ``"VmHWM"`` or ``"sampled"``.

    Examples
    --------
    >>> with PeakRSS() as mem:
    ...     x = np.ones(10_000_000)
    >>> mem.peak - mem.start > 70e6
    True
    """

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.start = 0
        self.peak = 0
        self.method = "VmHWM"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            return _proc_status_kb("VmHWM") is not None
        except OSError:
            return False

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRSS:
        self.start = rss_bytes()
        self.peak = self.start
        if not self._reset_hwm():
            self.method = "sampled"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())
        else:
            self.peak = max(self.start, (_proc_status_kb("VmHWM") or 0) * 1024)


# --------------------------------------------------------------------------
# machine
# --------------------------------------------------------------------------


def git_commit(repo: str | os.PathLike | None = None) -> str:
    """Short hash of ``HEAD`` (``"unknown"`` outside a git checkout).

    A ``+dirty`` suffix is *not* added: rows are keyed by the commit the
    working tree is based on.

    Parameters
    ----------
    repo : path-like, optional
        Repository directory (default: this file's repository).

    Returns
    -------
    str
        ``git rev-parse --short HEAD`` or ``"unknown"``.
    """
    cwd = Path(repo) if repo is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def git_changed_files(*paths: str, repo: str | os.PathLike | None = None) -> list[str]:
    """Files under ``paths`` that differ from ``HEAD`` (modified or untracked).

    Recorded beside :func:`git_commit` so that a figure measured on a working
    tree with uncommitted changes says which files they were in.

    Parameters
    ----------
    *paths : str
        Paths relative to the repository root (default: the whole tree).
    repo : path-like, optional
        Repository directory (default: this file's repository).

    Returns
    -------
    list of str
        ``git status --porcelain`` paths; empty for a clean tree or outside git.
    """
    cwd = Path(repo) if repo is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", *(f":(top){p}" for p in paths)],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in out.stdout.splitlines() if line.strip()]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(kind: str = "cpu") -> str:
    """Device key used in result rows, e.g. ``"cpu: AMD EPYC x2"``.

    Parameters
    ----------
    kind : {"cpu"}
        Only the CPU is described here; GPU benchmarks pass their own name.

    Returns
    -------
    str
        ``"cpu: <model> x<logical cores>"``.
    """
    if kind != "cpu":
        raise ValueError(f"kind must be 'cpu', got {kind!r}")
    n = os.cpu_count() or 1
    return f"cpu: {_cpu_model()} x{n}"


def machine_info() -> dict[str, Any]:
    """Versions and hardware facts recorded in every results file.

    Returns
    -------
    dict
        Python / NumPy versions, CPU model, core count, total memory, load
        average at the time of the call (a busy machine skews timings).
    """
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "n_cpus": os.cpu_count(),
    }
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    kb = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    kb = int(line.split()[1])
                    break
    except OSError:
        pass
    if kb is not None:
        info["mem_total_gb"] = round(kb / 2**20, 1)
    return info


def measure_bandwidth(
    n_bytes: int = 256 * 2**20, repeats: int = 5, n_threads: int | None = None
) -> dict[str, float]:
    """Streaming memory bandwidth of this machine, measured with NumPy.

    Two kernels over float64 arrays much larger than the last-level cache:
    ``copy`` (``np.copyto(b, a)``, counted as read + write = 2 bytes moved
    per byte of ``a``, the STREAM convention, which ignores write-allocate
    traffic) and ``read`` (``np.add.reduce`` over ``a``). Each is run on one
    thread and on ``n_threads`` threads working on disjoint slices (NumPy
    releases the GIL in both loops). The best of ``repeats`` runs is kept.

    Parameters
    ----------
    n_bytes : int, default 256 MiB
        Size of each array.
    repeats : int, default 5
        Runs per kernel; the fastest is reported.
    n_threads : int, optional
        Threads for the parallel variant (default: ``os.cpu_count()``).

    Returns
    -------
    dict
        GB/s (1e9 bytes per second) for ``copy_1t``, ``read_1t``,
        ``copy_mt``, ``read_mt``, plus ``best`` (the maximum) and
        ``n_threads``.
    """
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    n_threads = n_threads or os.cpu_count() or 1
    n = n_bytes // 8
    a = np.ones(n)
    b = np.empty_like(a)
    b.fill(0.0)  # touch the pages before timing

    def best(fn: Callable[[], Any]) -> float:
        t = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            t = min(t, time.perf_counter() - t0)
        return t

    bounds = np.linspace(0, n, n_threads + 1).astype(int)
    slices = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]

    with ThreadPoolExecutor(n_threads) as pool:

        def par(fn: Callable[[slice], Any]) -> Callable[[], None]:
            return lambda: list(pool.map(fn, slices))

        out = {
            "copy_1t": 2 * a.nbytes / best(lambda: np.copyto(b, a)) / 1e9,
            "read_1t": a.nbytes / best(lambda: np.add.reduce(a)) / 1e9,
            "copy_mt": 2 * a.nbytes / best(par(lambda s: np.copyto(b[s], a[s]))) / 1e9,
            "read_mt": a.nbytes / best(par(lambda s: np.add.reduce(a[s]))) / 1e9,
        }
    out = {k: round(v, 2) for k, v in out.items()}
    out["best"] = max(out.values())
    out["n_threads"] = n_threads
    return out


# --------------------------------------------------------------------------
# subprocess isolation
# --------------------------------------------------------------------------


@dataclass
class WorkerResult:
    """Outcome of :func:`run_worker`.

    Attributes
    ----------
    status : str
        ``"ok"`` (the worker wrote its JSON), ``"killed"`` (it ran past the
        hard wall-clock limit) or ``"error"`` (it exited without a result).
    payload : dict or None
        The worker's JSON result.
    wall_s : float
        Wall-clock seconds of the whole subprocess.
    stderr_tail : str
        Last lines of the worker's stderr (for error reports).
    """

    status: str
    payload: dict | None
    wall_s: float
    stderr_tail: str


def run_worker(
    argv: Sequence[str],
    result_path: str | os.PathLike,
    *,
    timeout_s: float,
    env: dict[str, str] | None = None,
) -> WorkerResult:
    """Run ``python argv...`` in a fresh process and read its JSON result.

    A fresh process gives each measurement a clean heap, so peak-RSS figures
    do not include another provider's leftovers, and lets a run that goes
    past ``timeout_s`` be killed without losing the benchmark.

    Parameters
    ----------
    argv : sequence of str
        Arguments after the Python executable (script path and flags).
    result_path : path-like
        File the worker writes its JSON result to.
    timeout_s : float
        Hard wall-clock limit; the worker is killed when it is reached.
    env : dict, optional
        Extra environment variables for the worker.

    Returns
    -------
    WorkerResult
        Status, parsed JSON and wall time.
    """
    result_path = Path(result_path)
    result_path.unlink(missing_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )
    try:
        _, err = proc.communicate(timeout=timeout_s)
        killed = False
    except subprocess.TimeoutExpired:
        proc.kill()  # only the worker this function started
        _, err = proc.communicate()
        killed = True
    wall = time.perf_counter() - t0
    tail = "\n".join((err or "").strip().splitlines()[-15:])
    if killed:
        return WorkerResult("killed", None, wall, tail)
    if proc.returncode == 0 and result_path.exists():
        with open(result_path) as fh:
            return WorkerResult("ok", json.load(fh), wall, tail)
    return WorkerResult("error", None, wall, tail or f"exit code {proc.returncode}")


# --------------------------------------------------------------------------
# results files
# --------------------------------------------------------------------------


def load_rows(json_path: str | os.PathLike) -> tuple[dict, list[dict]]:
    """Read ``{"meta": ..., "rows": [...]}`` from a results file.

    Parameters
    ----------
    json_path : path-like
        Results JSON; a missing file gives empty meta and rows.

    Returns
    -------
    meta : dict
    rows : list of dict
    """
    p = Path(json_path)
    if not p.exists():
        return {}, []
    with open(p) as fh:
        data = json.load(fh)
    return data.get("meta", {}), data.get("rows", [])


def _csv_value(v: Any) -> Any:
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return v


def upsert_rows(
    json_path: str | os.PathLike,
    rows: Iterable[dict],
    key: Sequence[str],
    *,
    meta: dict | None = None,
    csv_path: str | os.PathLike | None = None,
) -> list[dict]:
    """Insert or replace result rows keyed by ``key``; rewrite JSON and CSV.

    Rows already in the file whose key matches a new row are replaced, the
    others are kept, so partial runs (one size, one provider) accumulate.

    Parameters
    ----------
    json_path : path-like
        Results JSON, ``{"meta": {...}, "rows": [...]}``.
    rows : iterable of dict
        New rows; each must contain every field of ``key``.
    key : sequence of str
        Fields identifying a row (e.g. op, provider, size, outcome, device,
        commit).
    meta : dict, optional
        Replaces the file's ``meta`` when given.
    csv_path : path-like, optional
        Also write all rows as CSV (union of fields, lists JSON-encoded).

    Returns
    -------
    list of dict
        All rows now in the file.
    """
    old_meta, old = load_rows(json_path)
    new = list(rows)
    for r in new:
        missing = [k for k in key if k not in r]
        if missing:
            raise ValueError(f"row is missing key fields {missing}: {r}")
    new_keys = {tuple(r[k] for k in key) for r in new}
    merged = [r for r in old if tuple(r.get(k) for k in key) not in new_keys] + new
    out = {"meta": meta if meta is not None else old_meta, "rows": merged}
    p = Path(json_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(out, fh, indent=1, default=_json_default)
        fh.write("\n")
    tmp.replace(p)
    if csv_path is not None:
        fields: list[str] = []
        for r in merged:
            fields += [f for f in r if f not in fields]
        with open(csv_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            for r in merged:
                w.writerow({k: _csv_value(r.get(k)) for k in fields})
    return merged


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def markdown_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    """Render rows as a GitHub markdown table.

    Parameters
    ----------
    rows : sequence of dict
        One dict per table row.
    columns : sequence of (header, field)
        Column header and the row field shown in it. Values are shown with
        ``str``; ``None`` shows as an empty cell. ``|`` is escaped.

    Returns
    -------
    str
        The table, one line per row, without a trailing newline.
    """
    head = "| " + " | ".join(h for h, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, sep]
    for r in rows:
        cells = []
        for _, f in columns:
            v = r.get(f)
            cells.append("" if v is None else str(v).replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_count(text: str) -> int:
    """Parse ``"10k"``, ``"2M"``, ``"1.5m"`` or ``"40000"`` into an int.

    Parameters
    ----------
    text : str
        A number with an optional k / M / G suffix (case-insensitive).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``text`` is not of that form.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*", text)
    if not m:
        raise ValueError(f"count {text!r} is not of the form 10k, 2M, 40000")
    return int(round(float(m.group(1)) * _SUFFIX[m.group(2).lower()]))


def format_count(n: int) -> str:
    """Inverse of :func:`parse_count` for round numbers (10000 -> "10k").

    Parameters
    ----------
    n : int

    Returns
    -------
    str
    """
    for suf, mult in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= mult and n % mult == 0:
            return f"{n // mult}{suf}"
    return str(n)


def fmt_seconds(t: float | None) -> str | None:
    """Seconds with three significant digits and a unit (``"12.3 ms"``).

    Parameters
    ----------
    t : float or None

    Returns
    -------
    str or None
    """
    if t is None or not np.isfinite(t):
        return None
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"
