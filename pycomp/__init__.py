"""pycomp: LLM comparative assessment with product-of-experts solvers."""
from pycomp._core import build_info as _core_build_info

__version__ = _core_build_info()["version"]


def build_info() -> dict:
    """Describe how this copy of pycomp was built.

    Returns
    -------
    dict
        ``version``, ``openmp`` (bool), ``max_threads``, ``cuda_compiled`` (bool),
        ``cuda_device_count`` and ``cuda_unavailable_reason`` ("" when CUDA is usable).
    """
    return dict(_core_build_info())


def cuda_available() -> bool:
    """Whether the CUDA backend is compiled in and a CUDA device is present."""
    info = _core_build_info()
    return bool(info["cuda_compiled"]) and info["cuda_device_count"] > 0
