"""Arena-shaped data: repeated comparisons of a pair collapsed into one weighted comparison.

A comparison of items a and b with weight w and probability p (that a wins) enters
both PoE objectives through terms linear in ``w p`` and ``w`` at a fixed score
difference d = s_a - s_b:

* PoE-BT: ``-[w p log sig(d) + (w - w p) log sig(-d)]``;
* PoE-Gaussian: ``w/2 (d - (p - beta))^2 = w/2 d^2 - w (p - beta) d + w/2 (p - beta)^2``.

Summing ``w p`` and ``w`` over all comparisons of the pair (with p turned into
P(a wins) when the row names b first) therefore gives the same gradient and Hessian
at every point: the same objective for PoE-BT, the same up to a constant for
PoE-Gaussian, and in both the same optimum and the same Hessian standard errors.
The solve then costs O(unique pairs) instead of O(comparisons).

The sandwich standard error needs sum over rows of squared per-row gradients,
``w^2 (sig(d) - p)^2``, which is not a function of the two sums; the collapse also
keeps ``sum w^2``, ``sum w^2 p`` and ``sum w^2 p^2`` per pair, from which it is exact.

The bootstrap draws rows with replacement. Identical rows (same pair, p and w) are
one resampling unit with a count, and drawing m rows is a multinomial draw of the
units with probabilities count / m, which is exactly what drawing rows does. With
win / tie / loss outcomes (p in {0, 1/2, 1}, no weights) there are at most three units
per pair; with continuous p nearly every row is its own unit (still exact, no saving
in the draws, only in the solves). With clusters the units are the clusters.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from pycomp import _validate as check
from pycomp._native import core

DENSE_PAIR_SLOTS = 1 << 24
"""Collapsing by default needs n (n - 1) / 2 <= this (pairs counted in a dense array)."""


def collapse(
    i: Any,
    j: Any = None,
    p: Any = None,
    *,
    weights: Any = None,
    n_items: Optional[int] = None,
    cluster: Any = None,
    units: bool = True,
    n_threads: Optional[int] = None,
):
    """Collapse comparisons into unique pairs (and the bootstrap's resampling units).

    Parameters
    ----------
    i, j, p, weights, n_items
        As in :func:`pycomp.solve`.
    cluster : array_like, shape (m,), optional
        Cluster of each comparison (any labels: a judge prompt, a user, ...). The
        bootstrap then draws whole clusters.
    units : bool
        Also build the resampling units (False: only the pair sums, for a solve).
    n_threads : int, optional

    Returns
    -------
    pycomp._core.Collapsed
        ``a``, ``b`` (a < b), ``wins`` (sum w p), ``total`` (sum w), ``q0``, ``q1``,
        ``q2`` (sum w^2, w^2 p, w^2 p^2) per unique pair; ``unit_count``,
        ``unit_start``, ``unit_pair``, ``unit_wins``, ``unit_total`` and ``draws``.
    """
    i, j, p, weights = check.comparison_arrays(i, j, p, weights)
    n = item_count(i, j, n_items)
    codes, n_clusters = cluster_codes(cluster, i.shape[0])
    threads = 0 if n_threads is None else check.integer(n_threads, "n_threads", minimum=0)
    return core().collapse(i, j, p, weights, n, codes, n_clusters, units, threads)


def item_count(i: np.ndarray, j: np.ndarray, n_items: Optional[int]) -> int:
    """``n_items``, or the largest index + 1 (at least 2 so that the core's checks name the problem)."""
    if n_items is not None:
        return check.integer(n_items, "n_items", minimum=2)
    return max(int(i.max()), int(j.max())) + 1


def cluster_codes(cluster: Any, m: int) -> Tuple[Optional[np.ndarray], int]:
    """Cluster labels as codes 0..G-1 (in sorted label order) and G; (None, 0) without."""
    if cluster is None:
        return None, 0
    labels = np.asarray(cluster)
    if labels.ndim != 1 or labels.shape[0] != m:
        raise ValueError(f"cluster must be 1-D with one label per comparison ({m}), got shape {labels.shape}")
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        row = int(np.flatnonzero(np.isnan(labels))[0])
        raise ValueError(f"cluster[{row}] is NaN (comparison {row}, 0-based): every comparison needs a cluster")
    names, codes = np.unique(labels, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), int(names.shape[0])


def pair_arrays(c) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The collapsed pairs as solver input: (a, b, p = wins / total, weights = total)."""
    total = c.total
    wins = c.wins
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, wins / np.where(total > 0, total, 1.0), 0.5)
    return c.a, c.b, np.clip(p, 0.0, 1.0), total


def worth_collapsing(m: int, n: int) -> bool:
    """Whether the default solve collapses: few enough pair slots, and many comparisons per slot."""
    slots = n * (n - 1) // 2
    return slots <= DENSE_PAIR_SLOTS and m >= 4 * slots
