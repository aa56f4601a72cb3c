"""Evaluation of predicted scores against gold scores (numpy, and scipy.stats for ranks and correlations).

* Spearman and Pearson correlation, overall and per group (then averaged over
  groups, the usual SummEval protocol: per article, then the mean).
* Pairwise accuracy: over all pairs of items (within groups when given) whose
  gold scores differ, the fraction ordered the same way by the prediction
  (ties in the prediction count one half).
* RMSE after an affine map ``a * score + b`` onto the gold scale, fitted by
  least squares on training items only and reported on the others.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "rankdata", "spearman", "pearson", "grouped_correlation", "pairwise_accuracy",
    "comparison_accuracy", "affine_fit", "affine_rmse", "evaluate",
]


def _vector(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if len(bad):
        raise ValueError(f"{name}[{bad[0]}] = {arr[bad[0]]} is not a finite number")
    return arr


def rankdata(x) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (``scipy.stats.rankdata``, float64)."""
    from scipy import stats

    return stats.rankdata(np.asarray(x, dtype=np.float64)).astype(np.float64)


def _paired(x, y):
    """Both inputs as finite float64 vectors of one length, or ``None`` when no correlation is defined.

    A correlation is undefined for fewer than 2 values or a constant input
    (``scipy.stats`` would warn and return NaN, or raise).
    """
    x, y = _vector(x, "x"), _vector(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    if len(x) < 2 or np.ptp(x) == 0.0 or np.ptp(y) == 0.0:
        return None
    return x, y


def pearson(x, y) -> float:
    """Pearson correlation (``scipy.stats.pearsonr``); NaN when either input is constant or has fewer than 2 values."""
    pair = _paired(x, y)
    if pair is None:
        return float("nan")
    from scipy import stats

    return float(stats.pearsonr(*pair)[0])


def spearman(x, y) -> float:
    """Spearman rank correlation (``scipy.stats.spearmanr``: Pearson on average ranks); NaN for constant input."""
    pair = _paired(x, y)
    if pair is None:
        return float("nan")
    from scipy import stats

    return float(stats.spearmanr(*pair)[0])


def _group_index(groups, n: int):
    if groups is None:
        return [np.arange(n)], [None]
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise ValueError(f"groups has shape {labels.shape}; expected ({n},)")
    uniq, inverse = np.unique(labels, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(uniq)))])
    return [order[bounds[g]:bounds[g + 1]] for g in range(len(uniq))], list(uniq)


def grouped_correlation(pred, gold, groups, method: str = "spearman") -> dict:
    """Correlation within each group, and its mean over the groups where it is defined.

    Returns
    -------
    dict
        ``mean`` (float), ``n_groups`` (groups with a defined correlation),
        ``n_undefined`` (groups with constant scores or fewer than 2 items),
        ``per_group`` ({label: value}).
    """
    pred, gold = _vector(pred, "pred"), _vector(gold, "gold")
    fn = spearman if method == "spearman" else pearson
    index, labels = _group_index(groups, len(pred))
    per = {}
    for members, label in zip(index, labels):
        per[label] = fn(pred[members], gold[members]) if len(members) >= 2 else float("nan")
    values = np.array([v for v in per.values() if np.isfinite(v)])
    return {
        "mean": float(values.mean()) if len(values) else float("nan"),
        "n_groups": int(len(values)),
        "n_undefined": int(len(per) - len(values)),
        "per_group": {(_jsonable(k)): v for k, v in per.items()},
    }


def _jsonable(label):
    if isinstance(label, (np.integer,)):
        return int(label)
    if isinstance(label, (np.floating,)):
        return float(label)
    return label if isinstance(label, (int, float, str)) or label is None else str(label)


def pairwise_accuracy(pred, gold, groups=None, *, max_pairs: int = 2_000_000, seed: int = 0) -> dict:
    """Fraction of item pairs with different gold scores that the prediction orders correctly.

    Pairs are all pairs within each group (all pairs overall without groups);
    above ``max_pairs`` a uniform random sample of that many pairs is used.
    A tie in the prediction counts one half.

    Returns
    -------
    dict
        ``accuracy``, ``n_pairs`` (pairs with a gold difference), ``sampled`` (bool).
    """
    pred, gold = _vector(pred, "pred"), _vector(gold, "gold")
    index, _ = _group_index(groups, len(pred))
    total = sum(len(m) * (len(m) - 1) // 2 for m in index)
    rng = np.random.default_rng(seed)
    correct = 0.0
    counted = 0
    sampled = total > max_pairs
    for members in index:
        g = len(members)
        if g < 2:
            continue
        if sampled:
            want = max(1, int(round(max_pairs * (g * (g - 1) / 2) / total)))
            a = rng.integers(0, g, size=want)
            b = rng.integers(0, g - 1, size=want)
            b = b + (b >= a)
        else:
            a, b = np.triu_indices(g, k=1)
        ia, ib = members[a], members[b]
        dg = np.sign(gold[ia] - gold[ib])
        dp = np.sign(pred[ia] - pred[ib])
        keep = dg != 0
        correct += float(np.sum(dp[keep] == dg[keep]) + 0.5 * np.sum(dp[keep] == 0))
        counted += int(keep.sum())
    return {"accuracy": correct / counted if counted else float("nan"), "n_pairs": counted, "sampled": bool(sampled)}


def comparison_accuracy(i, j, p, gold) -> dict:
    """How often judged comparisons agree with gold: p > 0.5 when gold[i] > gold[j].

    Pairs with equal gold scores are skipped; p = 0.5 counts one half.
    """
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    p, gold = _vector(p, "p"), _vector(gold, "gold")
    dg = np.sign(gold[i] - gold[j])
    dp = np.sign(p - 0.5)
    keep = dg != 0
    n = int(keep.sum())
    acc = float(np.sum(dp[keep] == dg[keep]) + 0.5 * np.sum(dp[keep] == 0)) / n if n else float("nan")
    return {"accuracy": acc, "n_pairs": n}


def affine_fit(pred, gold, train_mask=None):
    """Least-squares ``a, b`` with ``gold ~ a * pred + b`` on the training items.

    Raises
    ------
    ValueError
        With fewer than 2 training items.
    """
    pred, gold = _vector(pred, "pred"), _vector(gold, "gold")
    mask = np.ones(len(pred), bool) if train_mask is None else np.asarray(train_mask, dtype=bool)
    if mask.sum() < 2:
        raise ValueError(f"the affine map needs at least 2 training items, got {int(mask.sum())}")
    x, y = pred[mask], gold[mask]
    vx = float(np.var(x))
    if vx == 0.0:
        return 0.0, float(y.mean())
    a = float(np.mean((x - x.mean()) * (y - y.mean())) / vx)
    return a, float(y.mean() - a * x.mean())


def affine_rmse(pred, gold, train_mask=None) -> dict:
    """RMSE of ``a * pred + b`` against gold, the map fitted on ``train_mask`` items only.

    The RMSE is reported on the held-out items (those not in ``train_mask``);
    without a mask, or when every item is a training item, it is the in-sample
    RMSE over all items (``evaluated_on`` says which).
    """
    pred, gold = _vector(pred, "pred"), _vector(gold, "gold")
    mask = np.ones(len(pred), bool) if train_mask is None else np.asarray(train_mask, dtype=bool)
    if mask.shape != pred.shape:
        raise ValueError(f"train mask has shape {mask.shape}; expected {pred.shape}")
    a, b = affine_fit(pred, gold, mask)
    held_out = ~mask
    where = held_out if held_out.any() else np.ones(len(pred), bool)
    resid = a * pred[where] + b - gold[where]
    return {
        "rmse": float(np.sqrt(np.mean(resid ** 2))),
        "a": a,
        "b": b,
        "n_fit": int(mask.sum()),
        "n_eval": int(where.sum()),
        "evaluated_on": "held-out" if held_out.any() else "all (in-sample)",
    }


def evaluate(pred, gold, groups=None, *, train_mask=None, comparisons=None) -> dict:
    """All metrics in one dictionary (JSON-ready).

    Parameters
    ----------
    pred, gold : array-like, shape (n,)
    groups : array-like, shape (n,), optional
    train_mask : array-like of bool, shape (n,), optional
        Items the affine map is fitted on (default: all).
    comparisons : (i, j, p) tuple of arrays, optional
        Judged comparisons, for the judge's own agreement with gold.
    """
    pred, gold = _vector(pred, "pred"), _vector(gold, "gold")
    if pred.shape != gold.shape:
        raise ValueError(f"pred and gold differ in length: {len(pred)} vs {len(gold)}")
    out = {
        "n_items": int(len(pred)),
        "spearman": spearman(pred, gold),
        "pearson": pearson(pred, gold),
        "pairwise_accuracy": pairwise_accuracy(pred, gold, groups)["accuracy"],
        "rmse_affine": affine_rmse(pred, gold, train_mask) if len(pred) >= 2 else None,
    }
    if groups is not None:
        sp = grouped_correlation(pred, gold, groups, "spearman")
        pe = grouped_correlation(pred, gold, groups, "pearson")
        out.update({
            "n_groups": int(len(np.unique(np.asarray(groups)))),
            "spearman_per_group_mean": sp["mean"],
            "pearson_per_group_mean": pe["mean"],
            "groups_without_correlation": sp["n_undefined"],
            "spearman_per_group": sp["per_group"],
        })
    if comparisons is not None:
        ci, cj, cp = comparisons
        out["judge_accuracy"] = comparison_accuracy(ci, cj, cp, gold)["accuracy"]
    return out
