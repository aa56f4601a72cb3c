"""How far apart ranked items are, relative to their standard errors.

:func:`adjacent_separation` gives the one-line verdict ``pycomp rank`` prints
after solving: of the adjacent pairs in the ranking (within each group when
there are groups), how many differ by more than their combined standard error.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ["adjacent_separation"]

CRITERION = "sqrt(se_a^2 + se_b^2)"


def _members(groups: Optional[Sequence], n: int):
    """``(label, indices)`` of each group in order of first appearance; one group of all items without groups."""
    if groups is None:
        return [(None, np.arange(n))]
    labels = np.asarray(groups, dtype=object)
    if labels.shape != (n,):
        raise ValueError(f"groups has shape {labels.shape}; expected ({n},) like the scores")
    order = {}
    for k, label in enumerate(labels):
        order.setdefault(str(label), []).append(k)
    return [(label, np.asarray(idx, dtype=np.int64)) for label, idx in order.items()]


def _count_group(scores: np.ndarray, se: np.ndarray) -> dict:
    """Adjacent pairs, separated pairs and pairs lacking a standard error among one group's items."""
    order = np.argsort(-scores, kind="stable")
    s, e = scores[order], se[order]
    gap = s[:-1] - s[1:]
    combined = np.sqrt(e[:-1] ** 2 + e[1:] ** 2)
    known = np.isfinite(combined)
    return {"n_pairs": int(len(gap)), "n_separated": int(np.sum(gap[known] > combined[known])),
            "n_without_se": int(np.sum(~known))}


def _verdict(n_separated: int, n_known: int) -> str:
    if n_known == 0:
        return "nothing to compare"
    if n_separated == 0:
        return "the ranking is within its own noise: no adjacent items are told apart"
    if 2 * n_separated < n_known:
        return "the ranking is mostly within its own noise"
    if n_separated < n_known:
        return "at least half of the adjacent items are told apart"
    return "every adjacent pair is told apart"


def adjacent_separation(scores, se, groups: Optional[Sequence] = None) -> Tuple[dict, str]:
    """Count the adjacent pairs of the ranking that are further apart than their noise.

    Items are sorted by score (within each group when ``groups`` is given); an
    adjacent pair ``(a, b)`` is *separated* when
    ``score_a - score_b > sqrt(se_a**2 + se_b**2)``. Pairs where either
    standard error is not finite are counted apart (``n_without_se``).

    Parameters
    ----------
    scores, se : array-like, shape (n,)
        Scores and their standard errors.
    groups : array-like, shape (n,), optional
        Group label of each item: only items of the same group are ranked together.

    Returns
    -------
    counts : dict
        ``n_pairs`` (adjacent pairs), ``n_separated``, ``n_without_se``,
        ``criterion``, and with groups ``n_groups`` and ``per_group``
        (``{label: {n_pairs, n_separated, n_without_se}}``).
    text : str
        One line for the user, e.g. ``"separation: 3 of 19 adjacent pairs ...;
        the ranking is mostly within its own noise"``.

    Raises
    ------
    ValueError
        If ``scores``, ``se`` and ``groups`` differ in length.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    se = np.asarray(se, dtype=np.float64).ravel()
    if se.shape != scores.shape:
        raise ValueError(f"se has {len(se)} values for {len(scores)} scores")
    per_group = {label: _count_group(scores[idx], se[idx]) for label, idx in _members(groups, len(scores))}
    counts = {key: sum(c[key] for c in per_group.values()) for key in ("n_pairs", "n_separated", "n_without_se")}
    counts["criterion"] = CRITERION
    where = "in the ranking"
    if groups is not None:
        counts["n_groups"] = len(per_group)
        counts["per_group"] = per_group
        where = f"within the {len(per_group)} groups"
    n_known = counts["n_pairs"] - counts["n_without_se"]
    text = (f"separation: {counts['n_separated']} of {n_known} adjacent pairs {where} differ by more than their "
            f"combined standard error {CRITERION}; {_verdict(counts['n_separated'], n_known)}")
    if counts["n_without_se"]:
        text += f" ({counts['n_without_se']} pairs have no standard error)"
    return counts, text
