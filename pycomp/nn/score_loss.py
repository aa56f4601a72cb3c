"""``ScoreLoss``: the fused regression-aware (RAIL / TRACT) head loss as an ``nn.Module``."""

from __future__ import annotations

import torch
from torch import nn

from pycomp.ops._validate import (
    BACKENDS,
    REDUCTIONS,
    SCORE_NORMALIZE,
    as_score_ids,
    as_score_values,
    check_option,
)
from pycomp.ops.score_loss import score_loss

__all__ = ["ScoreLoss"]


class ScoreLoss(nn.Module):
    """Squared error of the expected score over score tokens, fused with the LM head.

    Stores the score tokens (as buffers, so they follow ``.to(device)``) and
    the hyperparameters, and calls :func:`pycomp.ops.score_loss`.

    Parameters
    ----------
    score_ids : (K,) int tensor or sequence
        Distinct token ids of the score tokens.
    score_values : (K,) float tensor or sequence
        Value of each score token.
    normalize : {"vocab", "scores"}, default "vocab"
    reduction : {"mean", "sum", "none"}, default "mean"
    backend : {"auto", "triton", "torch"}, default "auto"

    Examples
    --------
    >>> import torch
    >>> from pycomp.nn import ScoreLoss
    >>> loss_fn = ScoreLoss([11, 12, 13], [1.0, 2.0, 3.0], backend="torch")
    >>> loss_fn(torch.randn(2, 8), torch.randn(50, 8), torch.tensor([1.0, 2.5])).shape
    torch.Size([])
    """

    score_ids: torch.Tensor
    score_values: torch.Tensor

    def __init__(self, score_ids, score_values, normalize: str = "vocab", reduction: str = "mean",
                 backend: str = "auto"):
        super().__init__()
        ids = as_score_ids(score_ids, torch.device("cpu"))
        vals = as_score_values(score_values, ids.shape[0], torch.device("cpu"))
        self.register_buffer("score_ids", ids, persistent=False)
        self.register_buffer("score_values", vals, persistent=False)
        self.normalize = check_option("normalize", normalize, SCORE_NORMALIZE)
        self.reduction = check_option("reduction", reduction, REDUCTIONS)
        self.backend = check_option("backend", backend, BACKENDS)

    def forward(self, hidden: torch.Tensor, weight: torch.Tensor, target) -> torch.Tensor:
        """Loss of ``hidden`` (B, d) under the LM head ``weight`` (V, d); see :func:`pycomp.ops.score_loss`."""
        return score_loss(hidden, weight, self.score_ids, self.score_values, target,
                          normalize=self.normalize, reduction=self.reduction, backend=self.backend)

    def extra_repr(self) -> str:
        return (f"K={self.score_ids.shape[0]}, normalize={self.normalize!r}, "
                f"reduction={self.reduction!r}, backend={self.backend!r}")
