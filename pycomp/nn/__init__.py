"""``nn.Module`` wrappers of the fused head losses in :mod:`pycomp.ops`."""

from pycomp.nn.pair_loss import PairLoss
from pycomp.nn.score_loss import ScoreLoss

__all__ = ["PairLoss", "ScoreLoss"]
