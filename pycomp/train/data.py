"""Training data for judge fine-tuning: gold checks, held-out split, pairs and targets.

Everything here is numpy only; the prompts and token ids are made in
:mod:`pycomp.train.collator`.

* :func:`check_gold`: gold scores present, finite and not constant; no group
  with a single item (pairs are formed within groups).
* :func:`split_groups`: a held-out split by group (whole articles go to one side).
* :func:`pair_targets`: the soft target ``p* = sig(gamma (s_i - s_j) / std(s))``
  of the founding paper, or the hard target ``1[s_i > s_j]`` (ties 0.5).
* :func:`pair_examples`: pairs planned as in ``pycomp rank`` (within groups,
  ``k`` per item or all pairs), each in both orders, with its target.
* :func:`point_examples`: one example per item with its gold score on the
  score-token scale (``rail``).
* :func:`rank_examples`: sets of candidates from one group with a partial
  order given by their gold scores (``rank``, RRESCUE).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from pycomp import plan as P

__all__ = [
    "OBJECTIVES",
    "TrainingDataError",
    "check_gold",
    "split_groups",
    "pair_targets",
    "pair_examples",
    "PairExamples",
    "point_examples",
    "rank_examples",
]

#: The training objectives: pair soft-BCE, pair hard-BCE, regression-aware score loss, ranking.
OBJECTIVES = ("soft", "hard", "rail", "rank")


class TrainingDataError(ValueError):
    """Items that cannot be trained on (gold scores missing or constant, a group of one, bad settings)."""


def _row(ids: Optional[Sequence], k: int) -> str:
    return f"row {k + 1}" + (f" (id {ids[k]!r})" if ids is not None else "")


def check_gold(gold, groups=None, *, ids: Optional[Sequence] = None, gold_field: str = "gold",
               group_field: str = "group", pairwise: bool = True) -> np.ndarray:
    """Check gold scores (and groups) before training; return them as float64.

    Parameters
    ----------
    gold : array-like, shape (n,)
        Gold score of each item (``None`` or NaN counts as missing).
    groups : array-like, shape (n,), optional
        Group label of each item.
    ids : sequence, optional
        Item ids, to name rows in errors.
    gold_field, group_field : str
        Field names, to name them in errors.
    pairwise : bool
        The objective compares items within groups (``soft``, ``hard``,
        ``rank``): then every group needs two items.

    Returns
    -------
    numpy.ndarray
        float64, shape (n,).

    Raises
    ------
    TrainingDataError
        No items; a gold score missing or not a finite number (the row is
        named); all gold scores equal; with ``pairwise``, a group with one item.
    """
    if gold is None:
        raise TrainingDataError(f"no gold scores: training needs --gold-field (got none)")
    values = list(gold)
    if len(values) == 0:
        raise TrainingDataError("no items: there is nothing to train on")
    out = np.empty(len(values), dtype=np.float64)
    for k, v in enumerate(values):
        try:
            x = float(v)
        except (TypeError, ValueError):
            x = float("nan")
        if v is None or isinstance(v, bool) or not math.isfinite(x):
            raise TrainingDataError(
                f"{_row(ids, k)}: gold field {gold_field!r} = {v!r} is missing or not a finite number; "
                f"every training item needs a gold score"
            )
        out[k] = x
    if len(out) < 2 or float(np.ptp(out)) == 0.0:
        raise TrainingDataError(
            f"gold field {gold_field!r} is constant ({out[0]:g} for all {len(out)} items): pairs have no "
            f"preferred side and scores nothing to regress; give items with different gold scores"
        )
    if groups is not None:
        labels = np.asarray(groups, dtype=object)
        if labels.shape != out.shape:
            raise TrainingDataError(f"groups has shape {labels.shape}; expected one label per item ({len(out)},)")
        if pairwise:
            uniq, first, counts = np.unique(labels.astype(str), return_index=True, return_counts=True)
            lonely = np.flatnonzero(counts == 1)
            if len(lonely):
                g = lonely[0]
                raise TrainingDataError(
                    f"group {str(uniq[g])!r} ({group_field!r}) has a single item ({_row(ids, int(first[g]))}): pairs "
                    f"are formed within groups, so it cannot be compared with anything "
                    f"({len(lonely)} such group(s)); drop those items or merge their groups"
                )
    return out


def split_groups(groups, *, holdout: float = 0.0, holdout_groups: Optional[Sequence] = None,
                 seed: int = 0) -> Tuple[np.ndarray, List[str]]:
    """A held-out split by group.

    Parameters
    ----------
    groups : array-like, shape (n,), or None
        Group label of each item; ``None`` makes every item its own group.
    holdout : float
        Share of the groups held out, in [0, 1); drawn with ``seed``.
    holdout_groups : sequence, optional
        Hold out exactly these groups (overrides ``holdout``).
    seed : int

    Returns
    -------
    heldout : numpy.ndarray of bool, shape (n,)
        True for held-out items.
    names : list of str
        The held-out group labels, sorted.

    Raises
    ------
    TrainingDataError
        ``holdout`` outside [0, 1), an unknown group in ``holdout_groups``, or
        a split that leaves no training group.
    """
    labels = np.asarray(groups, dtype=object).astype(str)
    uniq = np.unique(labels)
    if holdout_groups is not None:
        wanted = [str(g) for g in holdout_groups]
        unknown = sorted(set(wanted) - set(uniq.tolist()))
        if unknown:
            raise TrainingDataError(f"held-out group(s) {unknown[:5]} are not among the items' groups")
        chosen = sorted(set(wanted))
    else:
        if not 0.0 <= float(holdout) < 1.0:
            raise TrainingDataError(f"--holdout {holdout!r} must be a fraction in [0, 1)")
        n_out = int(round(float(holdout) * len(uniq)))
        if holdout > 0 and n_out == 0 and len(uniq) > 1:
            n_out = 1
        rng = np.random.default_rng(seed)
        chosen = sorted(uniq[rng.permutation(len(uniq))[:n_out]].tolist())
    heldout = np.isin(labels, np.asarray(chosen, dtype=str))
    if heldout.all():
        raise TrainingDataError("the held-out split leaves no training items; hold out fewer groups")
    return heldout, chosen


def pair_targets(gold_first, gold_second, *, objective: str = "soft", gamma: float = 5.0,
                 scale: float = 1.0) -> np.ndarray:
    """Training target: the probability that the first item of each pair is the better one.

    Parameters
    ----------
    gold_first, gold_second : array-like
        Gold scores of the items shown first (A) and second (B).
    objective : {"soft", "hard"}
        ``soft``: ``sig(gamma * (s_A - s_B) / scale)``; ``hard``: 1, 0 or 0.5 (tie).
    gamma : float
        Sharpness of the soft target (> 0); ``gamma -> inf`` gives ``hard``.
    scale : float
        ``std(s)`` of the training gold scores (> 0).

    Returns
    -------
    numpy.ndarray
        float64 in [0, 1].

    Raises
    ------
    TrainingDataError
        ``gamma <= 0`` or not finite, ``scale <= 0``, an unknown objective.

    Examples
    --------
    >>> pair_targets([3.0, 2.0], [2.0, 2.0], objective="hard").tolist()
    [1.0, 0.5]
    >>> round(float(pair_targets([3.0], [2.0], gamma=5.0, scale=1.0)[0]), 4)
    0.9933
    """
    a = np.asarray(gold_first, dtype=np.float64)
    b = np.asarray(gold_second, dtype=np.float64)
    if objective == "hard":
        return np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))
    if objective != "soft":
        raise TrainingDataError(f"pair targets are for objective 'soft' or 'hard', got {objective!r}")
    if not (math.isfinite(float(gamma)) and gamma > 0):
        raise TrainingDataError(f"--gamma {gamma!r} must be a finite number > 0 (about 5; larger is sharper)")
    if not scale > 0:
        raise TrainingDataError(f"the gold scores' standard deviation {scale!r} must be > 0")
    z = float(gamma) * (a - b) / float(scale)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid, overflow-free


@dataclass
class PairExamples:
    """Ordered training pairs.

    Attributes
    ----------
    pairs : numpy.ndarray, int64, shape (m, 2)
        The planned unordered pairs (item indices, ``i < j``).
    first, second : numpy.ndarray, int64, shape (2m,)
        Item shown as A and as B: row ``2k`` is pair ``k`` in its order,
        row ``2k + 1`` the swapped order (the order of
        :func:`pycomp.judge.run.build_prompts`).
    target : numpy.ndarray, float64, shape (2m,)
        Probability that A is the better item.
    scale : float
        ``std(s)`` used by the soft targets.
    """

    pairs: np.ndarray
    first: np.ndarray
    second: np.ndarray
    target: np.ndarray
    scale: float

    def __len__(self) -> int:
        return len(self.first)


def pair_examples(gold, groups=None, *, objective: str = "soft", gamma: float = 5.0,
                  per_item: Optional[float] = 4, all_pairs: bool = False, design: str = "random",
                  seed: int = 0, scale: Optional[float] = None) -> PairExamples:
    """Pairs planned as in ``pycomp rank`` (within groups), in both orders, with targets.

    Parameters
    ----------
    gold : array-like, shape (n,)
        Gold scores (checked with :func:`check_gold` first).
    groups : array-like, shape (n,), optional
    objective : {"soft", "hard"}
    gamma : float
    per_item : float
        Comparisons per item for the ``random`` / ``greedy`` design.
    all_pairs : bool
        Every pair within each group instead.
    design : {"random", "greedy"}
    seed : int
    scale : float, optional
        Defaults to the standard deviation of ``gold`` (population, ddof 0).

    Returns
    -------
    PairExamples

    Raises
    ------
    TrainingDataError
        Bad ``gamma``/``per_item``, or a plan without pairs.
    """
    gold = np.asarray(gold, dtype=np.float64)
    n = len(gold)
    if not all_pairs and (per_item is None or not per_item > 0):
        raise TrainingDataError(f"--per-item must be > 0 (got {per_item!r}), or use --all-pairs")
    if scale is None:
        scale = float(np.std(gold))
    if objective == "soft" and not (math.isfinite(float(gamma)) and gamma > 0):
        raise TrainingDataError(f"--gamma {gamma!r} must be a finite number > 0 (about 5; larger is sharper)")
    pairs = P.plan_pairs(n, "all" if all_pairs else design, k=per_item, groups=groups, seed=seed)
    if len(pairs) == 0:
        raise TrainingDataError("the plan has no pairs: every group has a single item")
    first = np.empty(2 * len(pairs), dtype=np.int64)
    second = np.empty(2 * len(pairs), dtype=np.int64)
    first[0::2], second[0::2] = pairs[:, 0], pairs[:, 1]
    first[1::2], second[1::2] = pairs[:, 1], pairs[:, 0]
    target = pair_targets(gold[first], gold[second], objective=objective, gamma=gamma, scale=scale)
    return PairExamples(pairs=pairs, first=first, second=second, target=target, scale=float(scale))


def point_examples(gold, *, score_min: int = 1, score_max: int = 5,
                   gold_range: Optional[Tuple[float, float]] = None) -> Tuple[np.ndarray, dict]:
    """Gold scores on the score-token scale ``score_min..score_max`` (the ``rail`` targets).

    Gold scores already inside the range are used as they are; otherwise they
    are mapped affinely from ``gold_range`` (default: their min and max).

    Returns
    -------
    target : numpy.ndarray, float64, shape (n,)
    mapping : dict
        ``{"a": a, "b": b}`` with ``target = a * gold + b``.
    """
    gold = np.asarray(gold, dtype=np.float64)
    if score_max <= score_min:
        raise TrainingDataError(f"score range {score_min}..{score_max} is empty")
    lo, hi = gold_range if gold_range is not None else (float(gold.min()), float(gold.max()))
    if gold_range is None and lo >= score_min and hi <= score_max:
        return gold.copy(), {"a": 1.0, "b": 0.0}
    if not hi > lo:
        raise TrainingDataError(f"gold range {lo}..{hi} is empty")
    a = (score_max - score_min) / (hi - lo)
    b = score_min - a * lo
    return a * gold + b, {"a": float(a), "b": float(b)}


def rank_examples(gold, groups=None, *, candidates: int = 4, per_group: Optional[int] = None,
                  seed: int = 0) -> List[np.ndarray]:
    """Candidate sets for the ranking objective: items of one group, partially ordered by gold.

    Each group's items are shuffled and cut into sets of ``candidates``
    (the last set topped up with items from the start); sets whose gold
    scores are all equal (no order) are dropped. With ``per_group`` each
    group gives that many sets instead of covering its items once.

    Returns
    -------
    list of numpy.ndarray
        Item indices of each candidate set (2 to ``candidates`` items).

    Raises
    ------
    TrainingDataError
        ``candidates < 2``, or no set with two different gold scores.
    """
    gold = np.asarray(gold, dtype=np.float64)
    if int(candidates) < 2:
        raise TrainingDataError(f"--rank-candidates {candidates!r} must be >= 2")
    candidates = int(candidates)
    labels = np.zeros(len(gold), dtype=np.int64) if groups is None else np.unique(
        np.asarray(groups, dtype=object).astype(str), return_inverse=True)[1]
    rng = np.random.default_rng(seed)
    out = []
    for g in range(int(labels.max()) + 1 if len(labels) else 0):
        members = np.flatnonzero(labels == g)
        if len(members) < 2:
            continue
        size = min(candidates, len(members))
        n_sets = per_group if per_group is not None else int(math.ceil(len(members) / size))
        order = rng.permutation(members)
        for s in range(n_sets):
            take = np.take(order, np.arange(s * size, (s + 1) * size), mode="wrap")
            if len(np.unique(take)) < size:  # wrapped into itself: reshuffle
                take = rng.choice(members, size=size, replace=False)
            if np.ptp(gold[take]) > 0:
                out.append(np.asarray(take, dtype=np.int64))
    if not out:
        raise TrainingDataError("no candidate set has two different gold scores: nothing to rank")
    return out
