"""Device dispatch of :func:`pycomp.solve`: which backend solves, and how the arrays get there.

Three backends share the solver API:

* ``"cpu"``: the OpenMP backend (``csrc/cpu``).
* ``"thrust"``: the Thrust solvers of ``csrc/thrust`` built by the host compiler with
  Thrust's OpenMP device system. It is the CUDA backend's source run on the CPU, so
  that the CPU test suite checks the GPU code's logic against the NumPy reference; it
  is not a performance path and ``device="auto"`` never picks it.
* ``"cuda"``: the same source built by nvcc. Numpy arrays are validated on the host
  and copied to the GPU once; CUDA arrays (torch CUDA tensors, or any object with
  ``__cuda_array_interface__``) are used in place and validated on the GPU.

``device="auto"`` picks ``"cuda"`` when a GPU works here and the problem has at least
:data:`AUTO_CUDA_MIN_COMPARISONS` comparisons, otherwise ``"cpu"``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from pycomp import _validate as check
from pycomp._native import core

AUTO_CUDA_MIN_COMPARISONS = 1_000_000
"""Smallest problem ``device="auto"`` sends to the GPU (numpy input).

Below it the CPU backend finishes in about the fixed costs of the GPU path: the first
CUDA call of a process creates a context (hundreds of milliseconds), every solve
allocates and copies 24-32 bytes per comparison over PCIe, and a Newton solve is a few
hundred dependent kernel launches of about 10 us each. The CPU backend solves 200k
comparisons in 11-22 ms on the 2-core CI machine (``pycomp.solve``'s notes) and 1M in
about a tenth of a second per thread-core, which is where the GPU starts to win.
CUDA arrays always go to the GPU under ``"auto"``: they are there already.
"""

_INDEX_TYPES = {"<i4": 4, "<i8": 8}


@dataclass
class CudaArrays:
    """Comparisons in GPU memory, checked for type and shape, used in place.

    Attributes
    ----------
    i, j, p, weights : object
        The caller's arrays (kept here so that they stay alive during the solve).
    m : int
    index_bytes : int
        4 (int32) or 8 (int64) for both i and j.
    pointers : tuple of int
        Device addresses of i, j, p, weights (0 when absent).
    """

    i: Any
    j: Any
    p: Any
    weights: Any
    m: int
    index_bytes: int
    pointers: Tuple[int, int, int, int]

    def to_host(self) -> tuple:
        """The arrays copied to numpy (for the standard errors' dense inverse)."""
        return tuple(None if a is None else _to_numpy(a) for a in (self.i, self.j, self.p, self.weights))


def is_cuda_array(x: Any) -> bool:
    """Whether ``x`` lives in GPU memory (has ``__cuda_array_interface__``)."""
    try:
        return hasattr(x, "__cuda_array_interface__")
    except Exception:  # torch raises for CPU tensors on some versions instead of lacking it
        return False


def device_build_info() -> dict:
    """``thrust``, ``thrust_version``, ``cuda_solvers`` and ``cuda_thrust_version`` of this build."""
    return dict(core().device_build_info())


@functools.lru_cache(maxsize=1)
def cuda_unavailable_reason() -> str:
    """Why ``solve(device="cuda")`` cannot run here ("" when it can).

    The CUDA solvers must be compiled in, a device visible, and a 3-item solve on it
    must succeed (which catches an old driver or a device in a bad state); the answer
    is computed once per process.
    """
    info = core().build_info()
    if not device_build_info()["cuda_solvers"]:
        return info["cuda_unavailable_reason"] or "pycomp was built without the CUDA solvers"
    if info["cuda_unavailable_reason"]:
        return info["cuda_unavailable_reason"]
    try:
        core().device_solve("cuda", "bt", np.array([0, 1, 2], np.int32), np.array([1, 2, 0], np.int32))
    except Exception as exc:  # the probe's failure is the answer
        return f"a 3-item test solve on the GPU failed: {exc}"
    return ""


def cuda_available() -> bool:
    """Whether ``solve(device="cuda")`` works here (see :func:`cuda_unavailable_reason`)."""
    return cuda_unavailable_reason() == ""


def comparison_arrays(device: str, i: Any, j: Any, p: Any, weights: Any) -> tuple:
    """The solve's device and its comparison arrays, type- and shape-checked.

    Returns
    -------
    device : str
        "cpu", "thrust" or "cuda" ("auto" resolved).
    arrays : tuple
        ``(i, j, p, weights)`` as numpy (see ``_validate.comparison_arrays``) or a
        :class:`CudaArrays` for arrays in GPU memory.

    Raises
    ------
    RuntimeError
        The device asked for cannot be used here (the message says why).
    ValueError, TypeError
        Bad arrays, or CUDA arrays with a device other than "cuda" or "auto".
    """
    given = [a for a in (i, j, p, weights) if a is not None]
    if any(is_cuda_array(a) for a in given):
        if device not in ("auto", "cuda"):
            raise ValueError(
                f"device = {device!r} but the comparisons are CUDA arrays: use device='cuda' (or 'auto'), "
                "or move them to the host first"
            )
        _require_cuda()
        return "cuda", (_cuda_arrays(i, j, p, weights),)
    arrays = check.comparison_arrays(i, j, p, weights)
    return resolve(device, arrays[0].shape[0]), arrays


def resolve(device: str, m: int) -> str:
    """The backend for ``device`` and a problem of ``m`` comparisons on the host."""
    if device == "thrust":
        if not device_build_info()["thrust"]:
            raise RuntimeError(
                "device='thrust' was requested but it is not part of this build: the CCCL (Thrust) headers "
                "were not found when pycomp was compiled"
            )
        return "thrust"
    if device == "cuda":
        _require_cuda()
        return "cuda"
    if device == "auto" and m >= AUTO_CUDA_MIN_COMPARISONS and cuda_available():
        return "cuda"
    return "cpu"


def solve(device: str, model: str, arrays: tuple, n_items: Optional[int], method: str, alpha: float, beta: float,
          tol: float, max_iter: int) -> dict:
    """Run one solve on a Thrust backend; returns the core's result dict (objective included)."""
    if isinstance(arrays[0], CudaArrays):
        c = arrays[0]
        return core().device_solve_pointers(
            device, model, *c.pointers, c.m, c.index_bytes, n_items, method, alpha, beta, tol, max_iter, True
        )
    i, j, p, weights = arrays
    return core().device_solve(device, model, i, j, p, weights, n_items, method, alpha, beta, tol, max_iter, True)


def host_arrays(arrays: tuple, copy: bool) -> tuple:
    """``(i, j, p, weights)`` on the host: the numpy arrays, or copies of CUDA arrays
    when ``copy`` (else four None: a solve on CUDA arrays needs no host copy)."""
    if isinstance(arrays[0], CudaArrays):
        return arrays[0].to_host() if copy else (None,) * 4
    return arrays


def _require_cuda() -> None:
    reason = cuda_unavailable_reason()
    if reason:
        raise RuntimeError(f"device='cuda' was requested but the CUDA backend cannot be used: {reason}")


def _interface(x: Any, field: str) -> dict:
    if not is_cuda_array(x):
        raise TypeError(
            f"{field} is on the host but the other comparison arrays are CUDA arrays: give all of them on the GPU"
        )
    return x.__cuda_array_interface__


def _contiguous(x: Any) -> Any:
    return x.contiguous() if hasattr(x, "contiguous") else x


def _cuda_arrays(i: Any, j: Any, p: Any, weights: Any) -> CudaArrays:
    if j is None:
        shape = tuple(_interface(i, "i")["shape"])
        if len(shape) != 2 or shape[1] != 2:
            raise ValueError(f"j is None, so i must be an (m, 2) array of (winner, loser) rows; got shape {shape}")
        i, j = i[:, 0], i[:, 1]
    i, j = _contiguous(i), _contiguous(j)
    _synchronize(i)
    fi, fj = _interface(i, "i"), _interface(j, "j")
    for field, f in (("i", fi), ("j", fj)):
        if len(f["shape"]) != 1:
            raise ValueError(f"{field} must be 1-D, got an array of shape {tuple(f['shape'])}")
        if f["typestr"] not in _INDEX_TYPES:
            raise TypeError(f"{field} must be an int32 or int64 CUDA array of item indices, got typestr {f['typestr']}")
        _check_dense(f, field)
    m = int(fi["shape"][0])
    if int(fj["shape"][0]) != m:
        raise ValueError(f"j has length {fj['shape'][0]} but i has length {m}")
    if m == 0:
        raise ValueError("comparisons are empty: i has length 0; give at least one comparison")
    if fi["typestr"] != fj["typestr"]:
        j = j.to(i.dtype) if hasattr(j, "to") else j
        fj = _interface(j, "j")
        if fi["typestr"] != fj["typestr"]:
            raise TypeError(f"i and j must have the same integer type, got {fi['typestr']} and {fj['typestr']}")
    values = []
    for field, a in (("p", p), ("weights", weights)):
        if a is None:
            values.append((None, 0))
            continue
        f = _interface(a, field)
        if f["typestr"] != "<f8" and hasattr(a, "to"):
            import torch  # only CUDA tensors get here with a dtype to convert

            a = a.to(torch.float64)
        a = _contiguous(a)
        f = _interface(a, field)
        if len(f["shape"]) != 1:
            raise ValueError(f"{field} must be 1-D, got an array of shape {tuple(f['shape'])}")
        if f["typestr"] != "<f8":
            raise TypeError(f"{field} must be a float64 CUDA array, got typestr {f['typestr']}")
        if int(f["shape"][0]) != m:
            raise ValueError(f"{field} has length {f['shape'][0]} but i has length {m}")
        _check_dense(f, field)
        values.append((a, int(f["data"][0])))
    (p, p_ptr), (w, w_ptr) = values
    return CudaArrays(i, j, p, w, m, _INDEX_TYPES[fi["typestr"]], (int(fi["data"][0]), int(fj["data"][0]), p_ptr, w_ptr))


def _check_dense(f: dict, field: str) -> None:
    strides = f.get("strides")
    itemsize = int(f["typestr"][2:])
    if strides is not None and tuple(strides) != (itemsize,):
        raise ValueError(f"{field} must be contiguous, got strides {tuple(strides)}")


def _synchronize(x: Any) -> None:
    # The solvers run on CUDA's legacy default stream; a torch tensor may still be being
    # written by work queued on torch's current stream.
    if type(x).__module__.startswith("torch"):
        import torch

        if x.device.index is not None and x.device.index != torch.cuda.current_device():
            raise ValueError(
                f"the comparisons are on cuda:{x.device.index} but the current CUDA device is "
                f"cuda:{torch.cuda.current_device()}: call torch.cuda.set_device({x.device.index}) first"
            )
        torch.cuda.current_stream().synchronize()


def _to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a.get() if hasattr(a, "get") else a)
