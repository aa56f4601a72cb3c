"""Fused LM-head losses for fine-tuning a judge (Triton, with torch references).

The losses read the next-token logits ``z = hidden @ weight.T`` of a few
answer tokens without ever forming the (B, V) logits or their gradient:

* :func:`pair_loss`: soft binary cross-entropy of the pair-token
  probability (``normalize="pair"`` or ``"vocab"``);
* :func:`score_loss`: regression-aware squared error of the expected score
  over score tokens (``normalize="vocab"`` as TRACT, or ``"scores"``);
* :func:`pair_loss_reference`, :func:`score_loss_reference`: plain-torch
  references (tests, benchmark baseline, fallback);
* :func:`gather_answer_hidden`: the (B, d) answer-position hidden states and
  the LM head weight of a Hugging Face causal LM, without logits.

Importing this package needs torch only; triton is imported on the first
kernel launch. Backend choice (``backend="auto"``): Triton for CUDA tensors
when triton imports, or for CPU tensors under ``TRITON_INTERPRET=1``
(float32 / float16); the torch reference otherwise.
"""

from pycomp.ops._backend import resolve_backend, triton_unavailable_reason
from pycomp.ops.gather import answer_positions, gather_answer_hidden, lm_head_weight
from pycomp.ops.pair_loss import PairLossFunction, pair_loss
from pycomp.ops.reference import pair_loss_reference, score_loss_reference
from pycomp.ops.score_loss import ScoreLossFunction, score_loss

__all__ = [
    "pair_loss",
    "score_loss",
    "pair_loss_reference",
    "score_loss_reference",
    "gather_answer_hidden",
    "answer_positions",
    "lm_head_weight",
    "PairLossFunction",
    "ScoreLossFunction",
    "resolve_backend",
    "triton_unavailable_reason",
]
