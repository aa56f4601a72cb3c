"""Fused pair-token soft binary cross-entropy on the LM head.

With ``z = hidden @ weight.T`` (never formed) and ``t`` the probability that
answer A is right:

* ``normalize="pair"``: ``delta = z_a - z_b``, ``q = sig(delta)``,
  ``loss = t softplus(-delta) + (1 - t) softplus(delta)``
  ``= -[t log q + (1 - t) log(1 - q)]``; ``dloss/ddelta = q - t``. Only the
  two head rows per sample are read (:func:`~pycomp.ops._launch.gather_logits`).
* ``normalize="vocab"``: ``loss = lse(z) - t z_a - (1 - t) z_b``;
  ``dloss/dz = softmax(z) - t e_a - (1 - t) e_b``. The forward streams the
  head once for ``lse``; the backward streams it once more, recomputing the
  logits tile by tile, and never stores (B, V) logits or their gradient.

The kernels live in :mod:`pycomp.ops._kernels` (shared with the score loss,
imported on first use); this module holds the launchers and the autograd
Function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pycomp.ops import _launch
from pycomp.ops._backend import resolve_backend
from pycomp.ops._validate import FloatsLike, IdsLike, check_option, check_pair_args, reduce_rows
from pycomp.ops.reference import pair_rows

__all__ = ["pair_loss", "PairLossFunction", "pair_loss_fwd", "pair_loss_bwd"]


def pair_loss_fwd(hidden, weight, ids, target, vocab: bool):
    """Per-row losses (B,) fp32 and the statistic the backward needs.

    Returns
    -------
    loss : torch.Tensor
        (B,) fp32.
    stat : torch.Tensor
        (B,) fp32: ``lse`` for ``vocab=True``, ``delta = z_a - z_b`` otherwise.
    """
    t = target.to(torch.float32)
    z = _launch.gather_logits(hidden, weight, ids)
    if vocab:
        lse = _launch.lse_fwd(hidden, weight)
        return lse - t * z[:, 0] - (1 - t) * z[:, 1], lse
    delta = z[:, 0] - z[:, 1]
    return t * F.softplus(-delta) + (1 - t) * F.softplus(delta), delta


def pair_loss_bwd(grad_rows, hidden, weight, ids, target, stat, vocab: bool,
                  need_hidden: bool, need_weight: bool):
    """Gradients of ``sum_b grad_rows[b] * loss[b]`` with respect to hidden and weight.

    Returns
    -------
    (grad_hidden, grad_weight) : tuple of torch.Tensor or None
        In the dtypes of ``hidden`` and ``weight``.
    """
    g = grad_rows.to(torch.float32)
    t = target.to(torch.float32)
    if vocab:
        coef = torch.stack([-t * g, -(1 - t) * g], dim=1)
        gh, gw = _launch.vocab_grad(hidden, weight, stat, g, ids, coef, need_hidden, need_weight)
        return (gh.to(hidden.dtype) if gh is not None else None), gw
    c = g * (torch.sigmoid(stat) - t)
    coef = torch.stack([c, -c], dim=1)
    gh = _launch.gather_grad(weight, ids, coef, hidden.dtype) if need_hidden else None
    gw = _launch.rows_grad_weight(hidden, ids, coef, weight.shape[0]) if need_weight else None
    return gh, gw


class PairLossFunction(torch.autograd.Function):
    """Autograd wrapper: ``(hidden, weight, ids, target, vocab) -> per-row loss (B,)``.

    ``ids`` is (B, 2) int64 (A then B), ``target`` (B,). Validation happens in
    :func:`pair_loss`; call that instead of ``apply`` directly.
    """

    @staticmethod
    def forward(ctx, hidden, weight, ids, target, vocab):
        loss, stat = pair_loss_fwd(hidden, weight, ids, target, vocab)
        ctx.save_for_backward(hidden, weight, ids, target, stat)
        ctx.vocab = vocab
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_rows):
        hidden, weight, ids, target, stat = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gh, gw = pair_loss_bwd(grad_rows, hidden, weight, ids, target, stat, ctx.vocab,
                               need_h, need_w)
        return gh, gw, None, None, None


def pair_loss(hidden: torch.Tensor, weight: torch.Tensor, a_ids: IdsLike, b_ids: IdsLike, target: FloatsLike,
              *, normalize: str = "pair", reduction: str = "mean", backend: str = "auto") -> torch.Tensor:
    """Soft binary cross-entropy of the judge's pair-token probability, fused with the LM head.

    The judge's probability that A is right is read from the next-token
    logits ``z = hidden @ weight.T`` of the two answer tokens; the loss is the
    soft binary cross-entropy against ``target``. The (B, V) logits are never
    formed, nor their gradient.

    Parameters
    ----------
    hidden : torch.Tensor
        (B, d) final-norm hidden states at the answer positions (see
        :func:`pycomp.ops.gather_answer_hidden`); float32, float16 or bfloat16
        (float64 runs on the torch reference).
    weight : torch.Tensor
        (V, d) LM head, same dtype and device. Frozen (``requires_grad=False``,
        the QLoRA case: no weight gradient is computed) or trainable (its
        gradient is computed blockwise).
    a_ids, b_ids : int or (B,) int tensor
        Token ids of answer A and answer B (an int is used for every row);
        ``a_ids[b] != b_ids[b]``, both in [0, V).
    target : float or (B,) tensor
        Probability in [0, 1] that A is the right answer (0 and 1 are hard
        labels, 0.5 a tie).
    normalize : {"pair", "vocab"}, default "pair"
        ``"pair"``: ``q = sig(z_a - z_b)``,
        ``loss_b = -[t log q + (1 - t) log(1 - q)]``.
        ``"vocab"``: ``loss_b = -[t log softmax(z)_a + (1 - t) log softmax(z)_b]``
        over the whole vocabulary (keeps the judge answering with A/B).
    reduction : {"mean", "sum", "none"}, default "mean"
    backend : {"auto", "triton", "torch"}, default "auto"
        ``"auto"``: Triton for CUDA tensors when triton imports, or for CPU
        tensors under ``TRITON_INTERPRET=1`` (float32 / float16); the torch
        reference otherwise.

    Returns
    -------
    torch.Tensor
        float32 scalar, or (B,) for ``reduction="none"`` (float64 for float64
        inputs on the torch backend).

    Raises
    ------
    ValueError
        Bad shapes or dtypes; ``a_ids``/``b_ids`` outside [0, V) or equal in a
        row; ``target`` outside [0, 1] or not finite; an unknown option; or
        ``backend="triton"`` where Triton cannot run. Messages name the field
        and the row, e.g. ``a_ids[3] = 50000 is outside [0, V=49152)``.

    Examples
    --------
    >>> import torch
    >>> from pycomp.ops import pair_loss
    >>> h, W = torch.randn(4, 16), torch.randn(100, 16)
    >>> loss = pair_loss(h, W, 7, 9, torch.tensor([1.0, 0.8, 0.5, 0.0]), backend="torch")
    >>> loss.shape
    torch.Size([])
    """
    check_option("backend", backend, ("auto", "triton", "torch"))
    args = check_pair_args(hidden, weight, a_ids, b_ids, target, normalize, reduction)
    vocab = normalize == "vocab"
    if resolve_backend(backend, hidden) == "torch":
        rows = pair_rows(hidden, weight, args.ids, args.target, normalize,
                         upcast=hidden.device.type != "cuda")
    else:
        rows = PairLossFunction.apply(hidden, weight, args.ids, args.target, vocab)
    return reduce_rows(rows, reduction)
