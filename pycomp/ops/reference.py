"""Plain-torch references for the fused head losses.

These are "eager torch done well": the two-token losses gather the rows of
the LM head they need, the vocabulary losses use ``torch.logsumexp`` instead
of a full ``log_softmax``. They are the standard the Triton kernels are tested
against, a named baseline in ``bench/bench_head_loss.py``, and the fallback
wherever Triton cannot run.

Notation: ``z = hidden @ weight.T`` are the logits (B, V), never formed by
the Triton kernels.

* pair loss, ``normalize="pair"``: ``q = sig(z_a - z_b)``,
  ``loss = -[t log q + (1 - t) log(1 - q)]``;
* pair loss, ``normalize="vocab"``: ``loss = lse(z) - t z_a - (1 - t) z_b``;
* score loss: ``y_hat = sum_k v_k P(k)`` with ``P`` the softmax over the
  vocabulary (``"vocab"``) or over the K score tokens (``"scores"``);
  ``loss = (y_hat - y)^2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pycomp.ops._validate import (
    FloatsLike,
    IdsLike,
    check_pair_args,
    check_score_args,
    reduce_rows,
)

__all__ = ["pair_loss_reference", "score_loss_reference"]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for 16-bit inputs, float64 for float64 inputs."""
    return torch.promote_types(dtype, torch.float32)


def _full_logits(hidden: torch.Tensor, weight: torch.Tensor, upcast: bool) -> torch.Tensor:
    """All logits (B, V) in the compute dtype.

    ``upcast=True`` multiplies in the compute dtype (exact standard);
    ``upcast=False`` multiplies in the input dtype (fp32 accumulation inside
    the GEMM, output rounded to the input dtype) and upcasts the result, as
    eager training code does.
    """
    cdt = _compute_dtype(hidden.dtype)
    if upcast:
        return hidden.to(cdt) @ weight.to(cdt).T
    return F.linear(hidden, weight).to(cdt)


def _rows_logits(hidden: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Logits of per-row token ids, ``z[b, k] = hidden[b] . weight[ids[b, k]]`` (B, K)."""
    cdt = _compute_dtype(hidden.dtype)
    return torch.einsum("bd,bkd->bk", hidden.to(cdt), weight[ids].to(cdt))


def _shared_logits(hidden: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Logits of token ids shared by all rows, ``z[b, k] = hidden[b] . weight[ids[k]]`` (B, K)."""
    cdt = _compute_dtype(hidden.dtype)
    return hidden.to(cdt) @ weight[ids].to(cdt).T


def pair_rows(hidden, weight, ids, target, normalize: str, upcast: bool = True) -> torch.Tensor:
    """Per-row pair losses (B,) from validated arguments (``ids`` is (B, 2))."""
    cdt = _compute_dtype(hidden.dtype)
    t = target.to(cdt)
    if normalize == "pair":
        z = _rows_logits(hidden, weight, ids)
        delta = z[:, 0] - z[:, 1]
        return t * F.softplus(-delta) + (1 - t) * F.softplus(delta)
    logits = _full_logits(hidden, weight, upcast)
    lse = torch.logsumexp(logits, dim=-1)
    z = logits.gather(1, ids)
    return lse - t * z[:, 0] - (1 - t) * z[:, 1]


def score_rows(
    hidden, weight, score_ids, score_values, target, normalize: str, upcast: bool = True
) -> torch.Tensor:
    """Per-row score losses (B,) from validated arguments."""
    cdt = _compute_dtype(hidden.dtype)
    v = score_values.to(cdt)
    y = target.to(cdt)
    if normalize == "scores":
        z = _shared_logits(hidden, weight, score_ids)
        p = torch.softmax(z, dim=-1)
    else:
        logits = _full_logits(hidden, weight, upcast)
        lse = torch.logsumexp(logits, dim=-1)
        p = torch.exp(logits[:, score_ids] - lse[:, None])
    y_hat = p @ v
    return (y_hat - y) ** 2


def pair_loss_reference(hidden: torch.Tensor, weight: torch.Tensor, a_ids: IdsLike, b_ids: IdsLike,
                        target: FloatsLike, *, normalize: str = "pair", reduction: str = "mean",
                        upcast: bool = True) -> torch.Tensor:
    """Soft binary cross-entropy of the pair-token probability, in plain torch.

    Same contract as :func:`pycomp.ops.pair_loss`; differentiable by autograd.

    Parameters
    ----------
    hidden, weight, a_ids, b_ids, target, normalize, reduction
        As for :func:`pycomp.ops.pair_loss`; ``normalize="vocab"`` forms the
        full (B, V) logits here.
    upcast : bool, default True
        Form the logits from float32 (float64) copies of ``hidden`` and
        ``weight``. ``False`` multiplies in the input dtype, as eager training
        code does, and only upcasts the (B, V) result.

    Returns
    -------
    torch.Tensor
        Scalar, or (B,) for ``reduction="none"``; float32 (float64 for
        float64 inputs).

    Raises
    ------
    ValueError
        As :func:`pycomp.ops.pair_loss`: bad shapes, dtypes, token ids or
        targets (the message names the field and the row).
    """
    args = check_pair_args(hidden, weight, a_ids, b_ids, target, normalize, reduction)
    rows = pair_rows(hidden, weight, args.ids, args.target, normalize, upcast)
    return reduce_rows(rows, reduction)


def score_loss_reference(hidden: torch.Tensor, weight: torch.Tensor, score_ids: IdsLike,
                         score_values: FloatsLike, target: FloatsLike, *, normalize: str = "vocab",
                         reduction: str = "mean", upcast: bool = True) -> torch.Tensor:
    """Regression-aware (RAIL / TRACT) squared error of the expected score, in plain torch.

    Same contract as :func:`pycomp.ops.score_loss`; differentiable by autograd.

    Parameters
    ----------
    hidden, weight, score_ids, score_values, target, normalize, reduction
        As for :func:`pycomp.ops.score_loss`.
    upcast : bool, default True
        See :func:`pair_loss_reference`.

    Returns
    -------
    torch.Tensor
        Scalar, or (B,) for ``reduction="none"``.

    Raises
    ------
    ValueError
        As :func:`pycomp.ops.score_loss`: bad shapes, out-of-range or
        duplicate score ids, non-finite values or targets.
    """
    args = check_score_args(hidden, weight, score_ids, score_values, target, normalize, reduction)
    rows = score_rows(hidden, weight, args.score_ids, args.score_values, args.target, normalize, upcast)
    return reduce_rows(rows, reduction)
