"""Host-side launchers of the kernels in :mod:`pycomp.ops._kernels`.

Shapes: ``hidden`` (B, d), ``weight`` (V, d), ``ids`` (B, K) int (any
strides, so a shared (K,) id set can be passed ``expand``-ed), ``coef``
(B, K) fp32. Every launcher returns fp32 results unless stated otherwise.

Extra memory is O(B x d) plus O(B x programs) for the logsumexp partials
(and, for a trainable head with more than one row block, an fp32 scratch of
n_programs x B x BLOCK_V); none of it grows with V, and the (B, V) logits are
never stored.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from pycomp.ops._backend import load_kernels

__all__ = ["KernelConfig", "kernel_config", "set_kernel_overrides", "lse_fwd", "gather_logits",
           "gather_grad", "vocab_grad", "rows_grad_weight"]


@dataclass(frozen=True)
class KernelConfig:
    """Tile sizes and launch shape for one (B, V, d, dtype, device) problem."""

    block_b: int
    block_v: int
    block_d: int
    n_bb: int  # row blocks
    n_vb: int  # vocabulary blocks
    vb_per_split: int
    n_splits: int  # programs along the vocabulary
    num_warps: int
    num_stages: int
    prec: str  # tl.dot input precision for the logits
    grad_prec: str  # tl.dot input precision for the gradient GEMMs
    grad_f32: bool  # gradient GEMMs in fp32 (fp16 / fp32 inputs) or bf16


def _pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def _clamp(x: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, x))


def _sm_count(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 1


_TUNABLE = ("block_b", "block_v", "block_d", "num_warps", "num_stages", "programs_per_sm")
_overrides: dict = {}


def set_kernel_overrides(**kwargs) -> None:
    """Override the GPU tile choice (for tuning runs such as ``bench/bench_head_loss.py --tune``).

    Parameters
    ----------
    **kwargs
        Any of ``block_b``, ``block_v``, ``block_d`` (powers of two >= 16),
        ``num_warps``, ``num_stages``, ``programs_per_sm``; no arguments
        restores the defaults. Ignored under the Triton interpreter.
    """
    bad = sorted(set(kwargs) - set(_TUNABLE))
    if bad:
        raise ValueError(f"unknown kernel override(s) {bad}; choose from {list(_TUNABLE)}")
    for k in ("block_b", "block_v", "block_d"):
        v = kwargs.get(k)
        if v is not None and (v < 16 or v & (v - 1)):
            raise ValueError(f"{k} must be a power of two >= 16, got {v}")
    _overrides.clear()
    _overrides.update({k: v for k, v in kwargs.items() if v is not None})


def kernel_config(B: int, V: int, D: int, dtype: torch.dtype, device: torch.device,
                  interpreted: bool, *, programs_per_sm: int = 2,
                  row_programs: bool = True) -> KernelConfig:
    """Choose tiles: GPU-sized tiles on CUDA, few large tiles under the interpreter.

    Parameters
    ----------
    programs_per_sm : int
        Target number of programs per streaming multiprocessor (GPU only).
    row_programs : bool
        True when the grid has one program per row block (forward, frozen
        backward), False when each program loops over all row blocks.
    """
    if interpreted:
        # The interpreter pays a fixed cost per operation plus a cost per tile
        # element: few, large vocabulary tiles, yet still several blocks and
        # splits (with a short last split) and 16-row blocks, so the masked
        # tails, the split combination and several row blocks are exercised.
        block_b = 16
        block_v = _clamp(_pow2(math.ceil(V / 6)), 64, 4096)
        block_d = _clamp(_pow2(D), 16, 128)
        num_warps, num_stages = 4, 1
        target_splits = 3
    else:
        o = _overrides
        block_b = o.get("block_b", _clamp(_pow2(B), 16, 64))
        block_v = o.get("block_v", 128)
        block_d = o.get("block_d", 64 if dtype != torch.float32 else 32)
        num_warps = o.get("num_warps", 8 if block_b >= 64 else 4)
        num_stages = o.get("num_stages", 3)
        programs = o.get("programs_per_sm", programs_per_sm) * _sm_count(device)
        n_bb = math.ceil(B / block_b)
        target_splits = max(1, programs // n_bb) if row_programs else programs
    n_bb = math.ceil(B / block_b)
    n_vb = math.ceil(V / block_v)
    vb_per_split = math.ceil(n_vb / min(n_vb, target_splits))
    n_splits = math.ceil(n_vb / vb_per_split)
    if dtype == torch.float32:
        prec, grad_prec, grad_f32 = "ieee", "ieee", True
    elif dtype == torch.float16:
        prec, grad_prec, grad_f32 = "tf32", "tf32", True
    else:
        prec, grad_prec, grad_f32 = "tf32", "tf32", False
    return KernelConfig(block_b, block_v, block_d, n_bb, n_vb, vb_per_split, n_splits,
                        num_warps, num_stages, prec, grad_prec, grad_f32)


def _device_guard(t: torch.Tensor):
    if t.device.type == "cuda":
        return torch.cuda.device(t.device)
    return contextlib.nullcontext()


def _rowmajor(t: torch.Tensor) -> torch.Tensor:
    """``t`` with unit stride along its last dimension (copied only if needed)."""
    return t if t.stride(-1) == 1 else t.contiguous()


def _config_for(hidden, weight, programs_per_sm=2, row_programs=True):
    k = load_kernels()
    B, D = hidden.shape
    V = weight.shape[0]
    cfg = kernel_config(B, V, D, hidden.dtype, hidden.device, k.INTERPRETED,
                        programs_per_sm=programs_per_sm, row_programs=row_programs)
    return k, cfg, B, V, D


def lse_fwd(hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``logsumexp(hidden @ weight.T, dim=1)`` (B,) fp32 without forming the logits."""
    hidden, weight = _rowmajor(hidden), _rowmajor(weight)
    k, cfg, B, V, D = _config_for(hidden, weight)
    m = torch.empty((cfg.n_splits, B), device=hidden.device, dtype=torch.float32)
    s = torch.empty_like(m)
    with _device_guard(hidden):
        k._lse_fwd_kernel[(cfg.n_bb, cfg.n_splits)](
            hidden, weight, m, s, B, V, D, hidden.stride(0), weight.stride(0),
            cfg.n_vb, cfg.vb_per_split,
            BLOCK_B=cfg.block_b, BLOCK_V=cfg.block_v, BLOCK_D=cfg.block_d, PREC=cfg.prec,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
    # every split holds at least one vocabulary entry, so s >= 1 and log(s) is finite
    return torch.logsumexp(m + torch.log(s), dim=0)


def gather_logits(hidden: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """``z[b, k] = hidden[b] . weight[ids[b, k]]`` (B, K) fp32."""
    hidden, weight = _rowmajor(hidden), _rowmajor(weight)
    k, cfg, B, V, D = _config_for(hidden, weight)
    K = ids.shape[1]
    z = torch.empty((B, K), device=hidden.device, dtype=torch.float32)
    block_d = min(cfg.block_d * 2, _pow2(D)) if not k.INTERPRETED else _clamp(_pow2(D), 16, 128)
    with _device_guard(hidden):
        k._gather_logits_kernel[(cfg.n_bb, K)](
            hidden, weight, ids, z, B, D, hidden.stride(0), weight.stride(0),
            ids.stride(0), ids.stride(1), z.stride(0),
            BLOCK_B=cfg.block_b, BLOCK_D=max(16, block_d), num_warps=4,
        )
    return z


def gather_grad(weight: torch.Tensor, ids: torch.Tensor, coef: torch.Tensor,
                out_dtype: torch.dtype) -> torch.Tensor:
    """``grad_h[b] = sum_k coef[b, k] * weight[ids[b, k]]`` (B, d) in ``out_dtype``."""
    weight = _rowmajor(weight)
    B, K = ids.shape
    V, D = weight.shape
    k = load_kernels()
    block_b = 16
    block_d = _clamp(_pow2(D), 16, 128)
    gh = torch.empty((B, D), device=weight.device, dtype=out_dtype)
    with _device_guard(weight):
        k._gather_grad_kernel[(math.ceil(B / block_b), math.ceil(D / block_d))](
            weight, ids, coef, gh, B, D, K, weight.stride(0),
            ids.stride(0), ids.stride(1), coef.stride(0), coef.stride(1), gh.stride(0),
            BLOCK_B=block_b, BLOCK_D=block_d, num_warps=4,
        )
    return gh


def vocab_grad(hidden: torch.Tensor, weight: torch.Tensor, lse: torch.Tensor,
               alpha: torch.Tensor, ids: torch.Tensor, coef: torch.Tensor,
               need_hidden: bool, need_weight: bool):
    """Gradients for ``G = alpha * softmax(z) + sparse(ids, coef)`` without forming ``z``.

    Returns
    -------
    grad_hidden : torch.Tensor or None
        ``G @ weight`` (B, d) fp32 (None unless ``need_hidden``).
    grad_weight : torch.Tensor or None
        ``G.T @ hidden`` (V, d) in the weight's dtype (None unless ``need_weight``).
    """
    if not (need_hidden or need_weight):
        return None, None
    hidden, weight = _rowmajor(hidden), _rowmajor(weight)
    lse = lse.contiguous()
    alpha = alpha.to(torch.float32).contiguous()
    coef = coef.to(torch.float32)
    k, cfg, B, V, D = _config_for(hidden, weight, programs_per_sm=1,
                                  row_programs=not need_weight)
    gh = torch.zeros((B, D), device=hidden.device, dtype=torch.float32) if need_hidden else None
    common = dict(BLOCK_B=cfg.block_b, BLOCK_V=cfg.block_v, BLOCK_D=cfg.block_d,
                  PREC=cfg.prec, GRAD_PREC=cfg.grad_prec, GRAD_F32=cfg.grad_f32,
                  num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    strides = (hidden.stride(0), weight.stride(0), ids.stride(0), ids.stride(1),
               coef.stride(0), coef.stride(1))
    with _device_guard(hidden):
        if not need_weight:
            k._vocab_grad_h_kernel[(cfg.n_bb, cfg.n_splits)](
                hidden, weight, lse, alpha, ids, coef, gh, B, V, D, ids.shape[1],
                *strides, gh.stride(0), cfg.n_vb, cfg.vb_per_split, **common,
            )
            return gh, None
        gw = torch.empty_like(weight)
        scr = torch.empty((cfg.n_splits, cfg.n_bb * cfg.block_b, cfg.block_v),
                          device=hidden.device, dtype=torch.float32)
        gh_arg = gh if need_hidden else lse  # never written when NEED_GH is False
        k._vocab_grad_hw_kernel[(cfg.n_splits,)](
            hidden, weight, lse, alpha, ids, coef, gh_arg, gw, scr, B, V, D, ids.shape[1],
            *strides, gh.stride(0) if need_hidden else 0, gw.stride(0),
            cfg.n_bb, cfg.n_vb, cfg.vb_per_split, NEED_GH=need_hidden, **common,
        )
    return gh, gw


def rows_grad_weight(hidden: torch.Tensor, ids: torch.Tensor, coef: torch.Tensor,
                     V: int) -> torch.Tensor:
    """Dense (V, d) gradient with rows ``sum_{b, k: ids[b, k] = v} coef[b, k] * hidden[b]``.

    Only the distinct ids are accumulated (in fp32, one rounding to the
    hidden dtype per row); every other row is zero.
    """
    B, K = ids.shape
    uniq, inv = torch.unique(ids.reshape(-1), return_inverse=True)
    rows = torch.arange(B, device=ids.device).repeat_interleave(K)
    mix = torch.zeros((uniq.shape[0], B), device=hidden.device, dtype=torch.float32)
    mix.index_put_((inv, rows), coef.reshape(-1).to(torch.float32), accumulate=True)
    gw = torch.zeros((V, hidden.shape[1]), device=hidden.device, dtype=hidden.dtype)
    gw[uniq] = (mix @ hidden.to(torch.float32)).to(hidden.dtype)
    return gw
