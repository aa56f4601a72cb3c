"""pycomp.nn.PairLoss / ScoreLoss: thin modules over pycomp.ops."""

import pytest

torch = pytest.importorskip("torch")

from head_loss_cases import assert_close, make_head  # noqa: E402

from pycomp.nn import PairLoss, ScoreLoss  # noqa: E402
from pycomp.ops import pair_loss, score_loss  # noqa: E402


def test_pair_module_calls_op(device):
    h, w = make_head(3, 16, 1000, torch.float32, device)
    t = torch.tensor([1.0, 0.0, 0.5], device=device)
    mod = PairLoss(normalize="vocab", reduction="sum")
    assert "normalize='vocab'" in repr(mod)
    assert_close(mod(h, w, 4, 5, t), pair_loss(h, w, 4, 5, t, normalize="vocab", reduction="sum"),
                 torch.float32, "loss")


def test_score_module_buffers_and_call(device):
    h, w = make_head(3, 16, 1000, torch.float32, device)
    y = torch.tensor([1.0, 3.0, 2.0], device=device)
    mod = ScoreLoss([7, 8, 9], [1.0, 2.0, 3.0], normalize="scores").to(device)
    assert mod.score_ids.device.type == torch.device(device).type
    assert "K=3" in repr(mod)
    assert mod.state_dict() == {}  # the score tokens are configuration, not state
    assert_close(mod(h, w, y), score_loss(h, w, [7, 8, 9], [1.0, 2.0, 3.0], y, normalize="scores"),
                 torch.float32, "loss")


def test_module_options_are_checked():
    with pytest.raises(ValueError, match="normalize must be one of 'pair', 'vocab'"):
        PairLoss(normalize="softmax")
    with pytest.raises(ValueError, match="reduction must be one of"):
        ScoreLoss([1, 2], [1.0, 2.0], reduction="avg")
    with pytest.raises(ValueError, match=r"score_values must have shape \(K,\) = \(2,\)"):
        ScoreLoss([1, 2], [1.0])
