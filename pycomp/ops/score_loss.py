"""Fused regression-aware score loss (RAIL / TRACT) on the LM head.

With ``z = hidden @ weight.T`` (never formed), score tokens ``s_k`` worth
``v_k`` (k = 1..K) and gold score ``y``:

* ``normalize="vocab"`` (TRACT): ``P_k = exp(z_{s_k} - lse(z))``;
  ``y_hat = sum_k v_k P_k``; ``loss = (y_hat - y)^2``. With ``r = y_hat - y``
  and ``p = softmax(z)``:
  ``dloss/dz_j = 2 r (sum_k v_k P_k [j = s_k] - y_hat p_j)``, i.e. a dense
  softmax part with ``alpha = -2 r y_hat`` and a sparse part
  ``coef_k = 2 r v_k P_k`` on the score tokens (the shared vocabulary-streaming
  kernels of :mod:`pycomp.ops._kernels`).
* ``normalize="scores"``: ``P = softmax(z_{s_1..s_K})``;
  ``dloss/dz_{s_k} = 2 r P_k (v_k - y_hat)``; only the K head rows are read.
"""

from __future__ import annotations

import torch

from pycomp.ops import _launch
from pycomp.ops._backend import resolve_backend
from pycomp.ops._validate import FloatsLike, IdsLike, check_option, check_score_args, reduce_rows
from pycomp.ops.reference import score_rows

__all__ = ["score_loss", "ScoreLossFunction", "score_loss_fwd", "score_loss_bwd"]


def _probs(z, lse, vocab):
    return torch.exp(z - lse[:, None]) if vocab else torch.softmax(z, dim=1)


def score_loss_fwd(hidden, weight, ids, values, target, vocab: bool):
    """Per-row losses (B,) fp32 and the statistics the backward needs.

    ``ids`` is (B, K) (the shared score ids, expanded), ``values`` (K,) fp32.

    Returns
    -------
    loss : torch.Tensor
        (B,) fp32.
    z : torch.Tensor
        (B, K) fp32 logits of the score tokens.
    lse : torch.Tensor or None
        (B,) fp32 log-normaliser over the vocabulary (``vocab=True`` only).
    """
    z = _launch.gather_logits(hidden, weight, ids)
    lse = _launch.lse_fwd(hidden, weight) if vocab else None
    p = _probs(z, lse, vocab)
    r = p @ values - target.to(torch.float32)
    return r * r, z, lse


def score_loss_bwd(grad_rows, hidden, weight, ids, values, target, z, lse, vocab: bool,
                   need_hidden: bool, need_weight: bool):
    """Gradients of ``sum_b grad_rows[b] * loss[b]`` with respect to hidden and weight.

    Returns
    -------
    (grad_hidden, grad_weight) : tuple of torch.Tensor or None
        In the dtypes of ``hidden`` and ``weight``.
    """
    p = _probs(z, lse, vocab)
    y_hat = p @ values
    two_rg = 2.0 * (y_hat - target.to(torch.float32)) * grad_rows.to(torch.float32)
    if vocab:
        alpha = -two_rg * y_hat
        coef = two_rg[:, None] * values[None, :] * p
        gh, gw = _launch.vocab_grad(hidden, weight, lse, alpha, ids, coef, need_hidden, need_weight)
        return (gh.to(hidden.dtype) if gh is not None else None), gw
    coef = two_rg[:, None] * p * (values[None, :] - y_hat[:, None])
    gh = _launch.gather_grad(weight, ids, coef, hidden.dtype) if need_hidden else None
    gw = _launch.rows_grad_weight(hidden, ids, coef, weight.shape[0]) if need_weight else None
    return gh, gw


class ScoreLossFunction(torch.autograd.Function):
    """Autograd wrapper: ``(hidden, weight, ids, values, target, vocab) -> per-row loss (B,)``.

    ``ids`` is (B, K) int64 (the score ids, expanded), ``values`` (K,) fp32,
    ``target`` (B,). Validation happens in :func:`score_loss`.
    """

    @staticmethod
    def forward(ctx, hidden, weight, ids, values, target, vocab):
        loss, z, lse = score_loss_fwd(hidden, weight, ids, values, target, vocab)
        ctx.save_for_backward(hidden, weight, ids, values, target, z, lse)
        ctx.vocab = vocab
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_rows):
        hidden, weight, ids, values, target, z, lse = ctx.saved_tensors
        gh, gw = score_loss_bwd(grad_rows, hidden, weight, ids, values, target, z, lse,
                                ctx.vocab, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        return gh, gw, None, None, None, None


def score_loss(hidden: torch.Tensor, weight: torch.Tensor, score_ids: IdsLike, score_values: FloatsLike,
               target: FloatsLike, *, normalize: str = "vocab", reduction: str = "mean",
               backend: str = "auto") -> torch.Tensor:
    """Squared error of the expected score over the score tokens, fused with the LM head.

    The regression-aware loss of RAIL / TRACT: ``y_hat = sum_k v_k P(s_k)``
    from the next-token distribution, ``loss_b = (y_hat_b - y_b)^2``. The
    (B, V) logits are never formed, nor their gradient.

    Parameters
    ----------
    hidden : torch.Tensor
        (B, d) final-norm hidden states at the answer positions; float32,
        float16 or bfloat16 (float64 runs on the torch reference).
    weight : torch.Tensor
        (V, d) LM head, same dtype and device; frozen or trainable.
    score_ids : (K,) int tensor or sequence
        Distinct token ids of the score tokens, in [0, V) (any set: "1".."5",
        "1".."10", words).
    score_values : (K,) float tensor or sequence
        Value of each score token.
    target : float or (B,) tensor
        Gold score of each row (finite; any scale).
    normalize : {"vocab", "scores"}, default "vocab"
        ``P`` is the softmax over the whole vocabulary (as TRACT) or over the
        K score tokens.
    reduction : {"mean", "sum", "none"}, default "mean"
    backend : {"auto", "triton", "torch"}, default "auto"
        As in :func:`pycomp.ops.pair_loss`.

    Returns
    -------
    torch.Tensor
        float32 scalar, or (B,) for ``reduction="none"``.

    Raises
    ------
    ValueError
        Bad shapes or dtypes; score ids outside [0, V) or repeated
        (``score_ids[3] == score_ids[1] = 17``); non-finite values or targets;
        an unknown option; ``backend="triton"`` where Triton cannot run.

    Examples
    --------
    >>> import torch
    >>> from pycomp.ops import score_loss
    >>> h, W = torch.randn(2, 16), torch.randn(100, 16)
    >>> ids, vals = [11, 12, 13, 14, 15], [1.0, 2.0, 3.0, 4.0, 5.0]
    >>> score_loss(h, W, ids, vals, torch.tensor([4.0, 2.5]), normalize="scores",
    ...            backend="torch").shape
    torch.Size([])
    """
    check_option("backend", backend, ("auto", "triton", "torch"))
    args = check_score_args(hidden, weight, score_ids, score_values, target, normalize, reduction)
    vocab = normalize == "vocab"
    if resolve_backend(backend, hidden) == "torch":
        rows = score_rows(hidden, weight, args.score_ids, args.score_values, args.target,
                          normalize, upcast=hidden.device.type != "cuda")
    else:
        ids = args.score_ids.expand(args.B, -1)
        values = args.score_values.to(torch.float32)
        rows = ScoreLossFunction.apply(hidden, weight, ids, values, args.target, vocab)
    return reduce_rows(rows, reduction)
