"""Choosing between the Triton kernels and the torch reference.

Triton is imported lazily, on the first launch, never at ``import pycomp.ops``:
``pycomp.ops`` imports without triton and without a GPU.

The Triton interpreter (``TRITON_INTERPRET=1``, kernels run on CPU tensors
through numpy) is a process-wide mode fixed when ``triton`` itself is first
imported: Triton's own library functions are defined for the interpreter or
for the compiler at that moment, and the two cannot be mixed. So the variable
must be set before anything imports triton (a test conftest, the shell).
:func:`triton_unavailable_reason` detects a late switch and says so, and the
kernels of :mod:`pycomp.ops._kernels` are always defined in the mode triton
was imported in.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

import torch

__all__ = [
    "interpreter_enabled",
    "triton_import_error",
    "triton_interpreted",
    "load_kernels",
    "triton_unavailable_reason",
    "resolve_backend",
]

_KERNELS_MODULE = "pycomp.ops._kernels"
TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_warned_fallback = False
_import_error: str | None = None
_import_tried = False


def interpreter_enabled() -> bool:
    """Whether ``TRITON_INTERPRET`` is set to a true value now (as Triton reads it)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes", "y")


def triton_import_error() -> str | None:
    """``None`` if ``import triton`` works, else the reason it does not."""
    global _import_error, _import_tried
    if not _import_tried:
        _import_tried = True
        try:
            import triton  # noqa: F401
            import triton.language  # noqa: F401
        except Exception as exc:  # ImportError, or a broken install raising at import
            _import_error = f"triton cannot be imported ({type(exc).__name__}: {exc})"
    return _import_error


def triton_interpreted() -> bool:
    """Whether triton was imported in interpreter mode (imports triton if needed)."""
    import triton.language as tl

    return type(tl.zeros).__name__ == "InterpretedFunction"


def load_kernels():
    """Import :mod:`pycomp.ops._kernels`, defined in the mode triton was imported in.

    Returns
    -------
    module
        The kernel module; ``INTERPRETED`` records its mode.
    """
    mod = sys.modules.get(_KERNELS_MODULE)
    if mod is not None:
        return mod
    want = triton_interpreted()
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1" if want else "0"  # read by @triton.jit
    try:
        return importlib.import_module(_KERNELS_MODULE)
    finally:
        if old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = old


def triton_unavailable_reason(hidden: torch.Tensor) -> str | None:
    """Why the Triton kernels cannot run on ``hidden`` here (``None`` if they can)."""
    err = triton_import_error()
    if err is not None:
        return err
    dev = hidden.device.type
    if dev not in ("cpu", "cuda"):
        return f"tensors are on {hidden.device}, Triton runs on CUDA (or the CPU interpreter)"
    if hidden.dtype not in TRITON_DTYPES:
        return f"dtype {hidden.dtype} is not supported by the kernels (float32, float16, bfloat16)"
    interp = triton_interpreted()
    if dev == "cpu":
        if not interpreter_enabled():
            return "tensors are on the CPU and TRITON_INTERPRET=1 is not set"
        if not interp:
            return ("TRITON_INTERPRET=1 was set after triton had been imported; the interpreter "
                    "must be switched on before the first `import triton` in the process")
    if interp and hidden.dtype == torch.bfloat16:
        return "bfloat16 tl.dot is not exact in the Triton interpreter (TRITON_INTERPRET=1)"
    return None


def resolve_backend(backend: str, hidden: torch.Tensor) -> str:
    """Pick ``"triton"`` or ``"torch"`` for a call.

    Parameters
    ----------
    backend : {"auto", "triton", "torch"}
        ``"auto"`` uses Triton where it can run (CUDA tensors with triton
        importable, or CPU tensors with ``TRITON_INTERPRET=1`` set before
        triton was imported) and the torch reference otherwise.
    hidden : torch.Tensor
        The (B, d) input; its device and dtype decide.

    Returns
    -------
    str
        ``"triton"`` or ``"torch"``.

    Raises
    ------
    ValueError
        ``backend="triton"`` where the kernels cannot run (the reason is
        given), or an unknown ``backend``.
    """
    global _warned_fallback
    if backend == "torch":
        return "torch"
    if backend not in ("auto", "triton"):
        raise ValueError(f"backend must be one of 'auto', 'triton', 'torch', got {backend!r}")
    reason = triton_unavailable_reason(hidden)
    if backend == "triton":
        if reason is not None:
            raise ValueError(f"backend='triton' cannot run here: {reason}")
        return "triton"
    if reason is None:
        return "triton"
    if hidden.device.type == "cuda" and not _warned_fallback:
        _warned_fallback = True
        warnings.warn(
            f"pycomp.ops: using the torch reference instead of the fused Triton kernels: {reason}",
            RuntimeWarning,
            stacklevel=3,
        )
    return "torch"
