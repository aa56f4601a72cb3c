"""Argument checks shared by the fused head losses and their references.

Every check raises :class:`ValueError` naming the field, the row and the
allowed range, e.g. ``a_ids[3] = 50000 is outside [0, V=49152)``. Checks on
tensor values are batched so that a CUDA batch costs one host sync when the
input is valid; the offending row is located only on the error path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch

__all__ = [
    "check_option",
    "check_head",
    "as_ids",
    "as_target",
    "as_score_ids",
    "as_score_values",
    "PairArgs",
    "ScoreArgs",
    "check_pair_args",
    "check_score_args",
    "reduce_rows",
]

IdsLike = Union[int, Sequence[int], torch.Tensor]
FloatsLike = Union[float, Sequence[float], torch.Tensor]

PAIR_NORMALIZE = ("pair", "vocab")
SCORE_NORMALIZE = ("vocab", "scores")
REDUCTIONS = ("mean", "sum", "none")
BACKENDS = ("auto", "triton", "torch")


def check_option(name: str, value: object, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError``."""
    if not isinstance(value, str) or value not in allowed:
        opts = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {opts}, got {value!r}")
    return value


def check_head(hidden: torch.Tensor, weight: torch.Tensor) -> tuple[int, int, int]:
    """Check ``hidden`` (B, d) against the LM head ``weight`` (V, d).

    Returns
    -------
    (B, d, V) : tuple of int
    """
    if not isinstance(hidden, torch.Tensor):
        raise TypeError(f"hidden must be a torch.Tensor, got {type(hidden).__name__}")
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if hidden.dim() != 2:
        raise ValueError(f"hidden must be 2-D (B, d), got shape {tuple(hidden.shape)}")
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D (V, d), got shape {tuple(weight.shape)}")
    B, d = hidden.shape
    V = weight.shape[0]
    if B == 0:
        raise ValueError("hidden has 0 rows: the batch is empty")
    if d == 0:
        raise ValueError("hidden has 0 columns (d = 0)")
    if V == 0:
        raise ValueError("weight has 0 rows: the vocabulary is empty")
    if weight.shape[1] != d:
        raise ValueError(
            f"weight must have d={d} columns to match hidden, got shape {tuple(weight.shape)}"
        )
    if not hidden.is_floating_point():
        raise ValueError(f"hidden must be a floating tensor, got {hidden.dtype}")
    if hidden.dtype != weight.dtype:
        raise ValueError(
            f"hidden and weight must have the same dtype, got {hidden.dtype} and {weight.dtype}"
        )
    if hidden.device != weight.device:
        raise ValueError(
            f"hidden and weight must be on the same device, got {hidden.device} and {weight.device}"
        )
    return B, d, V


def _to_tensor(name: str, value, device: torch.device, integer: bool) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach()
    else:
        try:
            t = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            kind = "integers" if integer else "numbers"
            raise TypeError(f"{name} must be a tensor or a sequence of {kind}: {exc}") from None
    if integer:
        if t.numel() == 0 and not isinstance(value, torch.Tensor):
            t = t.to(torch.long)  # torch.as_tensor([]) is float32
        if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
            raise ValueError(f"{name} must hold integer token ids, got dtype {t.dtype}")
        t = t.to(device=device, dtype=torch.long)
    else:
        if t.is_complex():
            raise ValueError(f"{name} must be real, got dtype {t.dtype}")
        if not t.is_floating_point():
            t = t.to(torch.float32)
        t = t.to(device=device)
    return t


def _broadcast_rows(name: str, t: torch.Tensor, B: int) -> torch.Tensor:
    if t.dim() == 0:
        return t.expand(B)
    if t.dim() != 1 or t.shape[0] != B:
        raise ValueError(
            f"{name} must have shape (B,) = ({B},) to match hidden, got {tuple(t.shape)}"
        )
    return t


def as_ids(name: str, ids: IdsLike, B: int, device: torch.device) -> torch.Tensor:
    """Token ids for each row as a (B,) ``int64`` tensor (a scalar is broadcast)."""
    return _broadcast_rows(name, _to_tensor(name, ids, device, integer=True), B)


def as_target(name: str, target: FloatsLike, B: int, device: torch.device) -> torch.Tensor:
    """Per-row targets as a (B,) floating tensor (a scalar is broadcast)."""
    return _broadcast_rows(name, _to_tensor(name, target, device, integer=False), B)


def as_score_ids(score_ids: IdsLike, device: torch.device) -> torch.Tensor:
    """Score token ids as a (K,) ``int64`` tensor, K >= 1."""
    t = _to_tensor("score_ids", score_ids, device, integer=True)
    if t.dim() != 1:
        raise ValueError(f"score_ids must be 1-D (K,), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError("score_ids is empty: give at least one score token")
    return t


def as_score_values(score_values: FloatsLike, K: int, device: torch.device) -> torch.Tensor:
    """Score values as a (K,) floating tensor matching ``score_ids``."""
    t = _to_tensor("score_values", score_values, device, integer=False)
    if t.dim() != 1 or t.shape[0] != K:
        raise ValueError(
            f"score_values must have shape (K,) = ({K},) to match score_ids, got {tuple(t.shape)}"
        )
    return t


def _first(mask: torch.Tensor) -> int:
    return int(torch.nonzero(mask.reshape(-1))[0].item())


def _fmt(x: float) -> str:
    return f"{x:g}"


def _raise_ids(name: str, ids: torch.Tensor, V: int) -> None:
    bad = (ids < 0) | (ids >= V)
    i = _first(bad)
    raise ValueError(f"{name}[{i}] = {int(ids[i])} is outside [0, V={V})")


def _check_all(checks: list[tuple[torch.Tensor, callable]]) -> None:
    """Evaluate boolean flags with one host sync; call the failing reporter."""
    if not checks:
        return
    flags = torch.stack([c[0].reshape(()) for c in checks]).tolist()
    for flag, (_, report) in zip(flags, checks):
        if flag:
            report()


@dataclass
class PairArgs:
    """Validated arguments of :func:`pycomp.ops.pair_loss`.

    Attributes
    ----------
    ids : torch.Tensor
        (B, 2) int64: column 0 is ``a_ids``, column 1 is ``b_ids``.
    target : torch.Tensor
        (B,) float: probability that A is the right answer.
    """

    B: int
    d: int
    V: int
    ids: torch.Tensor
    target: torch.Tensor


@dataclass
class ScoreArgs:
    """Validated arguments of :func:`pycomp.ops.score_loss`.

    Attributes
    ----------
    score_ids : torch.Tensor
        (K,) int64, distinct, in [0, V).
    score_values : torch.Tensor
        (K,) float, finite.
    target : torch.Tensor
        (B,) float, finite.
    """

    B: int
    d: int
    V: int
    score_ids: torch.Tensor
    score_values: torch.Tensor
    target: torch.Tensor


def check_pair_args(hidden, weight, a_ids, b_ids, target, normalize, reduction) -> PairArgs:
    """Validate the arguments of the pair loss; see :func:`pycomp.ops.pair_loss`."""
    check_option("normalize", normalize, PAIR_NORMALIZE)
    check_option("reduction", reduction, REDUCTIONS)
    B, d, V = check_head(hidden, weight)
    dev = hidden.device
    a = as_ids("a_ids", a_ids, B, dev)
    b = as_ids("b_ids", b_ids, B, dev)
    t = as_target("target", target, B, dev)

    def same():
        i = _first(a == b)
        raise ValueError(
            f"a_ids[{i}] == b_ids[{i}] = {int(a[i])}: the two answer tokens must differ"
        )

    def bad_target():
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            i = _first(~finite)
            raise ValueError(f"target[{i}] = {_fmt(float(t[i]))} is not a finite number")
        i = _first((t < 0) | (t > 1))
        raise ValueError(f"target[{i}] = {_fmt(float(t[i]))} is outside [0, 1]")

    _check_all(
        [
            (((a < 0) | (a >= V)).any(), lambda: _raise_ids("a_ids", a, V)),
            (((b < 0) | (b >= V)).any(), lambda: _raise_ids("b_ids", b, V)),
            ((a == b).any(), same),
            ((~((t >= 0) & (t <= 1))).any(), bad_target),
        ]
    )
    return PairArgs(B, d, V, torch.stack([a, b], dim=1), t)


def check_score_args(
    hidden, weight, score_ids, score_values, target, normalize, reduction
) -> ScoreArgs:
    """Validate the arguments of the score loss; see :func:`pycomp.ops.score_loss`."""
    check_option("normalize", normalize, SCORE_NORMALIZE)
    check_option("reduction", reduction, REDUCTIONS)
    B, d, V = check_head(hidden, weight)
    dev = hidden.device
    s = as_score_ids(score_ids, dev)
    K = s.shape[0]
    v = as_score_values(score_values, K, dev)
    t = as_target("target", target, B, dev)

    def dup():
        eq = s[:, None] == s[None, :]
        eq = torch.triu(eq, diagonal=1)
        first, later = (int(x) for x in torch.nonzero(eq)[0].tolist())
        raise ValueError(
            f"score_ids[{later}] == score_ids[{first}] = {int(s[later])}: "
            "score tokens must be distinct"
        )

    def nonfinite(name, x):
        def report():
            i = _first(~torch.isfinite(x))
            raise ValueError(f"{name}[{i}] = {_fmt(float(x[i]))} is not a finite number")

        return report

    _check_all(
        [
            (((s < 0) | (s >= V)).any(), lambda: _raise_ids("score_ids", s, V)),
            (torch.triu(s[:, None] == s[None, :], diagonal=1).any(), dup),
            ((~torch.isfinite(v)).any(), nonfinite("score_values", v)),
            ((~torch.isfinite(t)).any(), nonfinite("target", t)),
        ]
    )
    return ScoreArgs(B, d, V, s, v, t)


def reduce_rows(losses: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply ``reduction`` ("mean", "sum" or "none") to per-row losses (B,)."""
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses
