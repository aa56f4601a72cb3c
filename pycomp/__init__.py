"""pycomp: LLM comparative assessment with product-of-experts solvers.

The solver API needs numpy only: :func:`solve` and the estimators
:class:`BradleyTerry` and :class:`PoEGaussian` over the compiled core, which loads
at the first solve (``import pycomp`` loads no OpenMP runtime and sets no environment
variable).
"""
from pycomp import baselines  # noqa: E402
from pycomp._native import core as _native_core
from pycomp.estimators import BradleyTerry, PoEGaussian
from pycomp.exceptions import ConvergenceWarning, GraphWarning, NoOptimumError, NotFittedError
from pycomp.solve import Solution, solve


__all__ = [
    "BradleyTerry",
    "ConvergenceWarning",
    "GraphWarning",
    "NoOptimumError",
    "NotFittedError",
    "PoEGaussian",
    "Solution",
    "baselines",
    "build_info",
    "cuda_available",
    "encode_ids",
    "release_memory",
    "solve",
    "solve_table",
]


def __getattr__(name: str):
    # The id helpers need pandas; they load on first use so that `import pycomp`
    # and `pycomp.solve` need numpy only.
    if name in ("encode_ids", "solve_table"):
        from pycomp import ids

        return getattr(ids, name)
    if name == "__version__":
        return _native_core().build_info()["version"]
    if name == "_core":
        return _native_core()
    raise AttributeError(f"module 'pycomp' has no attribute {name!r}")


def build_info() -> dict:
    """Describe how this copy of pycomp was built.

    Returns
    -------
    dict
        ``version``, ``openmp`` (bool), ``max_threads``, ``cuda_compiled`` (bool),
        ``cuda_device_count``, ``cuda_unavailable_reason`` ("" when CUDA is usable),
        ``compiler`` and ``cpu_kernels`` ("avx2" or "base": the build of the solver
        kernels this CPU runs; ``PYCOMP_CPU_KERNELS=base`` in the environment forces
        the baseline), ``cuda_solvers`` (bool: whether ``solve(device="cuda")`` is
        part of this build; ``cuda_compiled`` alone means the CUDA runtime and device
        discovery are compiled in).
    """
    info = dict(_native_core().build_info())
    info["cuda_solvers"] = _CUDA_SOLVERS
    if not _CUDA_SOLVERS and not info["cuda_unavailable_reason"]:
        info["cuda_unavailable_reason"] = "the CUDA solvers are not part of this build (device discovery only)"
    return info


# The CUDA code of this build discovers devices only: solve(device="cuda") cannot run
# whatever the machine has, so cuda_available() says False.
_CUDA_SOLVERS = False


def cuda_available() -> bool:
    """Whether ``solve(device="cuda")`` can run here.

    True only when the CUDA solvers are compiled in and a CUDA device is present;
    :func:`build_info` says which of the two is missing (``cuda_unavailable_reason``).
    """
    info = build_info()
    return bool(info["cuda_compiled"] and info["cuda_solvers"]) and info["cuda_device_count"] > 0


def release_memory() -> int:
    """Free the large work arrays that the solver keeps between solves.

    Arrays of 2 MiB and more (the comparison graph, the per-entry curvatures, the
    solver's vectors) are kept when a solve ends, up to 1 GiB in all, and handed to
    the next solve of the same size: the kernel zeroes every fresh page, which took
    12-18% of a 1M-item solve. Results do not depend on it.

    Returns
    -------
    int
        The number of bytes freed.
    """
    return int(_native_core().release_memory())
