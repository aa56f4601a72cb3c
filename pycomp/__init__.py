"""pycomp: LLM comparative assessment with product-of-experts solvers.

The solver API needs numpy only: :func:`solve` and the estimators
:class:`BradleyTerry` and :class:`PoEGaussian` over the compiled core.
"""
import os

# libgomp busy-waits between parallel regions for long by default, which makes every
# thread crawl when the machine is shared (measured: 20-60x slower on a loaded 2-core
# box). Pure passive waiting puts threads to sleep between the back-to-back passes of
# a solve (measured: 10k items / 200k comparisons 28 ms instead of 18 ms). So the
# core's threads spin briefly (GOMP_SPINCOUNT) and then sleep. libgomp reads both when
# it loads; the spin count is withdrawn again afterwards so that torch's own OpenMP
# runtime, loaded later, keeps waiting passively (spinning slowed it on a busy CPU).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_SPIN_SET_HERE = "GOMP_SPINCOUNT" not in os.environ
os.environ.setdefault("GOMP_SPINCOUNT", "20000")
from pycomp import _core  # noqa: E402  (loads libgomp with the settings above)

if _SPIN_SET_HERE:
    del os.environ["GOMP_SPINCOUNT"]

from pycomp import baselines  # noqa: E402
from pycomp._core import build_info as _core_build_info
from pycomp.estimators import BradleyTerry, PoEGaussian
from pycomp.exceptions import ConvergenceWarning, GraphWarning, NotFittedError
from pycomp.ids import encode_ids, solve_table
from pycomp.solve import Solution, solve

__version__ = _core_build_info()["version"]

__all__ = [
    "BradleyTerry",
    "ConvergenceWarning",
    "GraphWarning",
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


def build_info() -> dict:
    """Describe how this copy of pycomp was built.

    Returns
    -------
    dict
        ``version``, ``openmp`` (bool), ``max_threads``, ``cuda_compiled`` (bool),
        ``cuda_device_count``, ``cuda_unavailable_reason`` ("" when CUDA is usable),
        ``compiler`` and ``cpu_kernels`` ("avx2" or "base": the build of the solver
        kernels this CPU runs; ``PYCOMP_CPU_KERNELS=base`` in the environment forces
        the baseline).
    """
    return dict(_core_build_info())


def cuda_available() -> bool:
    """Whether the CUDA backend is compiled in and a CUDA device is present."""
    info = _core_build_info()
    return bool(info["cuda_compiled"]) and info["cuda_device_count"] > 0


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
    return int(_core.release_memory())
