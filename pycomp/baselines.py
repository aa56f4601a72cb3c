"""Baseline aggregators to compare the PoE solvers against (benchmarks, papers).

Both return one value per item and NaN for items without comparisons.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from pycomp import _validate as check


def _prepare(i, j, p, weights, n_items):
    i, j, p, w = check.comparison_arrays(i, j, p, weights)
    n = int(max(i.max(), j.max())) + 1 if n_items is None else check.integer(n_items, "n_items", minimum=1)
    for name, idx in (("i", i), ("j", j)):
        bad = (idx < 0) | (idx >= n)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{name}[{row}] = {idx[row]} is outside [0, n_items={n})")
    if p is not None:
        bad = ~((p >= 0) & (p <= 1))
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"p[{row}] = {p[row]} is not a probability: p must be finite and in [0, 1]")
    if w is not None:
        bad = ~(np.isfinite(w) & (w >= 0))
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"weights[{row}] = {w[row]} is not allowed: weights must be finite and >= 0")
    p = np.ones(i.shape[0]) if p is None else p
    w = np.ones(i.shape[0]) if w is None else w
    return i, j, p, w, n


def _per_item_mean(i, j, score_i, w, n):
    num = np.bincount(i, weights=w * score_i, minlength=n) + np.bincount(j, weights=w * (1.0 - score_i), minlength=n)
    den = np.bincount(i, weights=w, minlength=n) + np.bincount(j, weights=w, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def win_rate(i: Any, j: Any = None, p: Any = None, *, weights: Any = None, n_items: Optional[int] = None) -> np.ndarray:
    """Weighted fraction of hard wins of each item.

    A comparison counts 1 for ``i`` when ``p > 0.5``, 0.5 when ``p == 0.5`` and 0
    otherwise; ``j`` gets the complement.

    Parameters
    ----------
    i, j, p, weights, n_items
        As in :func:`pycomp.solve`.

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    i, j, p, w, n = _prepare(i, j, p, weights, n_items)
    hard = np.where(p > 0.5, 1.0, np.where(p == 0.5, 0.5, 0.0))
    return _per_item_mean(i, j, hard, w, n)


def average_probability(
    i: Any, j: Any = None, p: Any = None, *, weights: Any = None, n_items: Optional[int] = None
) -> np.ndarray:
    """Weighted mean probability of winning of each item (``p`` for ``i``, ``1 - p`` for ``j``).

    Takes the arguments of :func:`win_rate` and returns the same shape.
    """
    i, j, p, w, n = _prepare(i, j, p, weights, n_items)
    return _per_item_mean(i, j, p, w, n)
