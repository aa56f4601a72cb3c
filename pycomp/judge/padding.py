"""Left-padded token batches, as the judge runs them and training mirrors them.

Left padding puts the last real token of every row at the last position, so
the next-token logits of that position score the answer; position ids count
real tokens only, so a padded row sees the positions it would see alone.
torch is imported on the first call.
"""
from __future__ import annotations

from typing import Optional, Sequence

__all__ = ["left_pad", "position_ids"]


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, *, fill: Optional[int] = None):
    """Stack token sequences of different lengths into one left-padded batch.

    Parameters
    ----------
    seqs : sequence of sequences of int
        One row each (a row may be empty).
    pad_id : int
        The tokenizer's pad token id.
    fill : int, optional
        Value of the padded cells instead of ``pad_id`` (``-100`` for labels).

    Returns
    -------
    ids : torch.Tensor
        (B, T) int64, ``T`` the longest row's length.
    mask : torch.Tensor
        (B, T) int64: 1 on real tokens, 0 on padding.
    """
    import torch

    width = max(len(x) for x in seqs)
    ids = torch.full((len(seqs), width), pad_id if fill is None else fill, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if len(seq):
            ids[row, width - len(seq):] = torch.as_tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq):] = 1
    return ids, mask


def position_ids(mask, start: int = 0):
    """Positions that count real tokens only: ``start`` at a row's first real token.

    Parameters
    ----------
    mask : torch.Tensor
        (B, T) attention mask of a left-padded batch.
    start : int
        Position of the first real token (the length of a cached prefix).

    Returns
    -------
    torch.Tensor
        (B, T) int64; padding cells get ``start``.
    """
    return start + (mask.cumsum(dim=1) - 1).clamp(min=0)
