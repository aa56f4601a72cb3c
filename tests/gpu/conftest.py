"""Set-up of the GPU tests (tests/gpu): every test here is marked ``gpu`` and skipped without CUDA.

A CUDA device counts as present when torch sees one or when pycomp's CUDA
solvers can run (``pycomp.cuda_available()``), so the solver tests also run
where torch is missing. Each module still states its own need (torch with
CUDA and triton for the kernels, ``cuda_available()`` for the solvers).
``bench/gpu_check.sh`` runs them with ``pytest -m gpu tests``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# the head-loss tolerances and inputs are shared with the CPU kernel tests
sys.path.insert(0, str(HERE.parent / "ops"))


def torch_cuda() -> bool:
    """Whether torch is installed and sees a CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _no_cuda_reason() -> str | None:
    if torch_cuda():
        return None
    try:
        import pycomp

        if pycomp.cuda_available():
            return None
    except Exception:  # no compiled core: nothing here can run
        pass
    return "needs a CUDA device (torch sees none and pycomp.cuda_available() is False)"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark the tests of this folder ``gpu`` (before ``-m`` selects) and skip them without CUDA."""
    ours = [item for item in items if HERE in Path(str(item.path)).parents]
    reason = _no_cuda_reason() if ours else None
    for item in ours:
        item.add_marker(pytest.mark.gpu)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
