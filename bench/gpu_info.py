"""Facts about the GPU a benchmark runs on: name, memory, peak and measured bandwidth, commit.

Peak DRAM bandwidth is ``2 x memory clock x bus width / 8`` bytes per second
(the memory transfers data on both clock edges; HBM3 on an H100 SXM: 2 x
2619 MHz x 5120 bit / 8 = 3.35 TB/s, the datasheet figure). The clock and bus
width are read, in this order, from

1. ``torch.cuda.get_device_properties`` (``memory_clock_rate`` in kHz and
   ``memory_bus_width`` in bits, where this torch has them);
2. the CUDA driver, ``cuDeviceGetAttribute`` with
   ``CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE`` (36, kHz) and
   ``CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH`` (37, bits), through ctypes;
3. ``nvidia-smi --query-gpu=clocks.max.memory`` (MHz) with the bus width of
   the device's name from :data:`BUS_WIDTH_BITS`.

The measured yardsticks beside it are a device-to-device copy of 1 GiB
(counted as read + write) and a float32 sum over 1 GiB (read only), the best
of five CUDA-event-timed runs each.

Usage::

    python bench/gpu_info.py --json OUT.json
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE = 36
CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH = 37
# Used only when neither torch nor the driver gives the bus width (datasheets).
BUS_WIDTH_BITS = {"H200": 6144, "H100": 5120, "A100": 5120, "H20": 6144, "GH200": 6144}
# Sources hashed when the tree has no .git (see :func:`commit`).
TREE_PATHS = ("CMakeLists.txt", "pyproject.toml", "csrc", "pycomp", "bench", "tests")


def commit() -> str:
    """The commit the measured code is: ``$GPU_CHECK_COMMIT``, ``git rev-parse HEAD``, or a tree hash.

    A copy of a working tree without ``.git`` (as on a lent GPU machine) gets
    ``tree-sha256:<16 hex>`` over the sources in :data:`TREE_PATHS`, so two runs
    of the same files carry the same key; pass ``GPU_CHECK_COMMIT`` to name the commit.
    """
    env = os.environ.get("GPU_CHECK_COMMIT", "").strip()
    if env:
        return env
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            return out.stdout.strip() + ("+uncommitted-changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "tree-sha256:" + tree_hash()


def tree_hash() -> str:
    """sha256 (16 hex digits) over the paths and contents of the source files in :data:`TREE_PATHS`."""
    h = hashlib.sha256()
    files = []
    for name in TREE_PATHS:
        p = ROOT / name
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += [f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts
                      and "results" not in f.relative_to(ROOT).parts[:2]]
    for f in sorted(files):
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _nvidia_smi(query: str) -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _driver_attributes(index: int) -> tuple[int, int] | None:
    """(memory clock kHz, bus width bits) from the CUDA driver API, or None."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    dev, clock, width = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGet(ctypes.byref(dev), index) != 0:
        return None
    if cuda.cuDeviceGetAttribute(ctypes.byref(clock), CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, dev) != 0:
        return None
    if cuda.cuDeviceGetAttribute(ctypes.byref(width), CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, dev) != 0:
        return None
    if clock.value <= 0 or width.value <= 0:
        return None
    return clock.value, width.value


def peak_bandwidth(index: int = 0) -> dict:
    """Peak DRAM bandwidth of CUDA device ``index`` (see the module docstring for the sources).

    Returns
    -------
    dict
        ``bytes_per_s`` (None when no source answered), ``memory_clock_khz``,
        ``bus_width_bits`` and ``how`` (which source, and the formula).
    """
    clock = width = None
    how = None
    name = ""
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(index)
            name = props.name
            clock = getattr(props, "memory_clock_rate", None)
            width = getattr(props, "memory_bus_width", None)
            if clock and width:
                how = "torch.cuda.get_device_properties (memory_clock_rate, memory_bus_width)"
    except Exception:  # a broken torch CUDA set-up: try the driver
        clock = width = None
    if not how:
        got = _driver_attributes(index)
        if got is not None:
            clock, width = got
            how = "CUDA driver cuDeviceGetAttribute (MEMORY_CLOCK_RATE, GLOBAL_MEMORY_BUS_WIDTH)"
    if not how:
        mhz = _nvidia_smi("clocks.max.memory")
        name = name or (_nvidia_smi("name") or "")
        bus = next((b for k, b in sorted(BUS_WIDTH_BITS.items(), key=lambda kv: -len(kv[0])) if k in name), None)
        if mhz and bus:
            clock, width = int(float(mhz) * 1000), bus
            how = f"nvidia-smi clocks.max.memory with the datasheet bus width of {name!r}"
    if not how:
        return {"bytes_per_s": None, "memory_clock_khz": None, "bus_width_bits": None,
                "how": "unknown: no source gave the memory clock and bus width"}
    bps = 2.0 * clock * 1e3 * width / 8
    return {"bytes_per_s": bps, "memory_clock_khz": int(clock), "bus_width_bits": int(width),
            "how": f"{how}; peak = 2 x clock x bus width / 8"}


def measured_bandwidth(n_bytes: int = 2**30, repeats: int = 5) -> dict:
    """Best-of-``repeats`` device copy (read + write) and float32 sum (read) bandwidth, bytes/s."""
    import torch

    x = torch.ones(n_bytes // 4, device="cuda", dtype=torch.float32)
    y = torch.empty_like(x)

    def best(fn):
        fn()
        t = float("inf")
        for _ in range(repeats):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            t = min(t, a.elapsed_time(b) / 1e3)
        return t

    out = {"copy_bytes_per_s": 2 * x.nbytes / best(lambda: y.copy_(x)),
           "read_bytes_per_s": x.nbytes / best(lambda: x.sum()), "n_bytes": x.nbytes}
    return out


def device_facts(measure: bool = True) -> dict:
    """Name, capability, memory, SMs, driver and bandwidths of device 0 (``{"cuda": False}`` without one)."""
    facts: dict = {"commit": commit()}
    try:
        import torch
    except ImportError:
        facts.update(cuda=False, reason="torch is not installed")
        return facts
    facts["torch"] = torch.__version__
    facts["torch_cuda"] = torch.version.cuda
    if not torch.cuda.is_available():
        facts.update(cuda=False, reason="torch.cuda.is_available() is False")
        return facts
    props = torch.cuda.get_device_properties(0)
    facts.update(cuda=True, name=props.name, capability=f"{props.major}.{props.minor}",
                 total_memory_gib=round(props.total_memory / 2**30, 1), sm_count=props.multi_processor_count,
                 driver=_nvidia_smi("driver_version"), peak=peak_bandwidth(0))
    if measure:
        facts["measured"] = measured_bandwidth()
    return facts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the facts to this file")
    ap.add_argument("--no-measure", action="store_true", help="skip the measured copy / read bandwidth")
    args = ap.parse_args(argv)
    facts = device_facts(measure=not args.no_measure)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(facts, indent=1) + "\n")
    if not facts.get("cuda"):
        print(f"no CUDA device: {facts.get('reason')}; commit {facts['commit']}")
        return 0
    peak = facts["peak"]
    gbs = f"{peak['bytes_per_s'] / 1e9:.0f} GB/s" if peak["bytes_per_s"] else "unknown"
    print(f"device {facts['name']} (sm_{facts['capability'].replace('.', '')}, {facts['total_memory_gib']} GiB, "
          f"{facts['sm_count']} SMs, driver {facts['driver']}); peak DRAM bandwidth {gbs} from {peak['how']}")
    if "measured" in facts:
        m = facts["measured"]
        print(f"measured: copy {m['copy_bytes_per_s'] / 1e9:.0f} GB/s (read + write), "
              f"read {m['read_bytes_per_s'] / 1e9:.0f} GB/s; commit {facts['commit']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
