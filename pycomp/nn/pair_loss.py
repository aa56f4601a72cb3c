"""``PairLoss``: the fused pair-token soft-BCE head loss as an ``nn.Module``."""

from __future__ import annotations

import torch
from torch import nn

from pycomp.ops._validate import BACKENDS, PAIR_NORMALIZE, REDUCTIONS, check_option
from pycomp.ops.pair_loss import pair_loss

__all__ = ["PairLoss"]


class PairLoss(nn.Module):
    """Soft binary cross-entropy of the pair-token probability, fused with the LM head.

    Stores the hyperparameters and calls :func:`pycomp.ops.pair_loss`.

    Parameters
    ----------
    normalize : {"pair", "vocab"}, default "pair"
        ``"pair"``: ``q = sig(z_a - z_b)``; ``"vocab"``: softmax over the whole
        vocabulary.
    reduction : {"mean", "sum", "none"}, default "mean"
    backend : {"auto", "triton", "torch"}, default "auto"

    Examples
    --------
    >>> import torch
    >>> from pycomp.nn import PairLoss
    >>> loss_fn = PairLoss(normalize="vocab", backend="torch")
    >>> h, W = torch.randn(2, 8), torch.randn(50, 8)
    >>> loss_fn(h, W, 3, 4, torch.tensor([1.0, 0.3])).shape
    torch.Size([])
    """

    def __init__(self, normalize: str = "pair", reduction: str = "mean", backend: str = "auto"):
        super().__init__()
        self.normalize = check_option("normalize", normalize, PAIR_NORMALIZE)
        self.reduction = check_option("reduction", reduction, REDUCTIONS)
        self.backend = check_option("backend", backend, BACKENDS)

    def forward(self, hidden: torch.Tensor, weight: torch.Tensor, a_ids, b_ids, target) -> torch.Tensor:
        """Loss of ``hidden`` (B, d) under the LM head ``weight`` (V, d); see :func:`pycomp.ops.pair_loss`."""
        return pair_loss(hidden, weight, a_ids, b_ids, target, normalize=self.normalize,
                         reduction=self.reduction, backend=self.backend)

    def extra_repr(self) -> str:
        return f"normalize={self.normalize!r}, reduction={self.reduction!r}, backend={self.backend!r}"
