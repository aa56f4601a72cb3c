"""Set-up for the fused head-loss tests (tests/ops).

Without a CUDA device the Triton kernels run in the Triton interpreter, which
is a process-wide mode fixed when ``triton`` is first imported. This conftest
sets ``TRITON_INTERPRET=1`` when it is imported; pycomp.ops imports triton
only on the first kernel launch, so that is in time unless a test module
collected earlier imported triton itself. In that case the kernel tests skip
with the reason (the ``device`` fixture) instead of failing; set the variable
in the root conftest or the environment to avoid it.
"""

import ctypes
import os

import pytest

try:
    import torch

    HAS_CUDA = torch.cuda.is_available()
except ImportError:  # the tests themselves skip via importorskip
    HAS_CUDA = False

if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _openblas():
    """ctypes handles (get, set) for the OpenBLAS that numpy loaded, or None."""
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted({ln.split()[-1] for ln in fh if "openblas" in ln.lower() and ".so" in ln})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pre, suf in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                         ("openblas", "")):
            get = getattr(lib, f"{pre}_get_num_threads{suf}", None)
            put = getattr(lib, f"{pre}_set_num_threads{suf}", None)
            if get is not None and put is not None:
                return get, put
    return None


@pytest.fixture(autouse=True)
def _single_thread_blas():
    """Run numpy BLAS on one thread during these tests, then restore it.

    The Triton interpreter does many small numpy matmuls; multi-threaded
    OpenBLAS spin-waits on them and is ~100x slower on a busy 2-core machine.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(1, "blas"):
            yield
        return
    handles = _openblas()
    if handles is None:
        yield
        return
    get, put = handles
    before = get()
    put(1)
    try:
        yield
    finally:
        put(before)


@pytest.fixture
def device():
    """The device the kernels are tested on: CUDA when present, else the CPU interpreter.

    Skips the test when the kernels cannot run on it here (see the module docstring).
    """
    dev = "cuda" if HAS_CUDA else "cpu"
    from pycomp.ops import triton_unavailable_reason

    reason = triton_unavailable_reason(torch.empty(0, device=dev))
    if reason is not None:
        pytest.skip(f"Triton kernels cannot run here: {reason}")
    return dev
