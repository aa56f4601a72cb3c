"""pycomp: LLM comparative assessment with product-of-experts solvers.

The solver API needs numpy only: :func:`solve` and the estimators
:class:`BradleyTerry` and :class:`PoEGaussian` over the compiled core, which loads
at the first solve (``import pycomp`` loads no OpenMP runtime and sets no environment
variable).
"""
from pycomp import baselines  # noqa: E402
from pycomp._native import core as _native_core
from pycomp.estimators import BradleyTerry, PoEGaussian
from pycomp.exceptions import ConvergenceWarning, GraphWarning, NoOptimumError, NotFittedError, PriorWarning
from pycomp.solve import Solution, solve


__all__ = [
    "BradleyTerry",
    "ConvergenceWarning",
    "GraphWarning",
    "PriorWarning",
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
        discovery are compiled in), ``thrust`` (bool: whether ``device="thrust"``, the
        CUDA solvers' source on Thrust's OpenMP system, is part of this build),
        ``thrust_version`` and ``cuda_thrust_version`` (the Thrust of each build, "" when
        absent).
    """
    from pycomp import _devices

    info = dict(_native_core().build_info())
    info.update(_devices.device_build_info())
    if not info["cuda_solvers"] and not info["cuda_unavailable_reason"]:
        info["cuda_unavailable_reason"] = "the CUDA solvers are not part of this build (device discovery only)"
    return info


def cuda_available() -> bool:
    """Whether ``solve(device="cuda")`` works here.

    True only when the CUDA solvers are compiled in, a CUDA device is present and a
    3-item test solve on it succeeds (tried once per process); otherwise
    ``pycomp._devices.cuda_unavailable_reason()`` says why.
    """
    from pycomp import _devices

    return _devices.cuda_available()


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
