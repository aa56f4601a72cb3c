"""The evaluate stage: scores against the items' gold scores, and how that grows with the comparisons.

The metrics themselves are in :mod:`pycomp.metrics`; this module picks the
items the affine map is fitted on (``--fit-on``), draws the budget curve
(Spearman against comparisons per item) and gathers a run's metrics.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pycomp import metrics as M
from pycomp import plan as P
from pycomp.config import RankConfig
from pycomp.items import Items, ItemsError
from pycomp.solve_stage import solve_scores

__all__ = ["parse_fit_on", "subsample_per_item", "spearman_curve", "evaluate_scores", "evaluate_run"]


def parse_fit_on(spec: Optional[str], items: Items, seed: int = 0) -> Tuple[np.ndarray, str]:
    """Which items the affine map onto the gold scale is fitted on.

    ``None``: all items (in-sample RMSE). ``FIELD=VALUE``: items whose FIELD equals
    VALUE (e.g. ``split=train``). A fraction in (0, 1): that share of items, drawn at
    random with ``seed`` (the rest are held out).
    """
    n = len(items)
    if spec is None or str(spec).strip() in ("", "all"):
        return np.ones(n, bool), "all"
    spec = str(spec).strip()
    if "=" in spec:
        column, value = spec.split("=", 1)
        if items.frame is None or column not in items.frame.columns:
            cols = ", ".join(map(str, items.frame.columns)) if items.frame is not None else ""
            raise ItemsError(f"--fit-on field {column!r} is not in the items; its fields are: {cols}")
        mask = items.frame[column].astype(str).to_numpy() == value
        if mask.sum() < 2:
            raise ItemsError(f"--fit-on {spec}: only {int(mask.sum())} items match; the affine map needs at least 2")
        return mask, spec
    try:
        share = float(spec)
    except ValueError:
        raise ItemsError(f"--fit-on {spec!r} is neither FIELD=VALUE nor a fraction in (0, 1)") from None
    if not 0 < share < 1:
        raise ItemsError(f"--fit-on {spec!r}: a fraction must be in (0, 1)")
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, bool)
    mask[rng.permutation(n)[: max(2, int(round(share * n)))]] = True
    return mask, f"random {share:g} of items (seed {seed})"


def subsample_per_item(pairs: np.ndarray, n_items: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a subset of ``pairs`` in which each item appears in at most ``k`` pairs.

    Pairs are visited in random order and kept while both items have room, so the
    subset is close to a random k-per-item design drawn from the judged pairs.
    """
    order = rng.permutation(len(pairs))
    deg = np.zeros(n_items, dtype=np.int64)
    keep = []
    for idx in order:
        a, b = pairs[idx]
        if deg[a] < k and deg[b] < k:
            deg[a] += 1
            deg[b] += 1
            keep.append(idx)
    return np.sort(np.asarray(keep, dtype=np.int64))


def spearman_curve(comparisons: pd.DataFrame, n_items: int, gold, groups=None, *, ks: Optional[Sequence[int]] = None,
                   repeats: int = 3, solver: str = "bt", alpha: float = 1.0, seed: int = 0,
                   dispersion: str = "none") -> pd.DataFrame:
    """Spearman of the solved scores against gold as the comparisons per item grow.

    For each ``k`` the judged comparisons are subsampled to at most ``k`` per item
    (``repeats`` random subsamples), solved, and scored: per-group Spearman averaged
    over groups when ``groups`` is given, else overall Spearman. ``dispersion``: the
    run's ``--dispersion`` (:mod:`pycomp.dispersion`), so the last point is the run's own solve.

    Returns
    -------
    pandas.DataFrame
        Columns ``k``, ``seed``, ``per_item`` (mean comparisons per item), ``n_pairs``, ``spearman``.
    """
    pairs = comparisons[["i", "j"]].to_numpy(np.int64)
    full = P.degrees(pairs, n_items)
    kmax = int(full.max()) if len(full) else 0
    if ks is None:
        ks = sorted(set([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, kmax]) & set(range(1, kmax + 1)))
    rows = []
    for k in ks:
        for rep in range(repeats if k < kmax else 1):
            rng = np.random.default_rng([seed, int(k), rep])
            sel = subsample_per_item(pairs, n_items, int(k), rng) if k < kmax else np.arange(len(pairs))
            sub = comparisons.iloc[sel]
            sol = solve_scores(n_items, sub, solver, alpha, return_se=False, dispersion=dispersion)
            if groups is not None:
                rho = M.grouped_correlation(sol.scores, gold, groups)["mean"]
            else:
                rho = M.spearman(sol.scores, gold)
            rows.append({"k": int(k), "seed": rep, "per_item": 2.0 * len(sel) / n_items, "n_pairs": int(len(sel)),
                         "spearman": rho})
    return pd.DataFrame(rows)


def evaluate_scores(items: Items, scores: np.ndarray, *, fit_on: Optional[str] = None, seed: int = 0,
                    comparisons: Optional[pd.DataFrame] = None) -> dict:
    """Metrics of ``scores`` against the items' gold scores (see :func:`pycomp.metrics.evaluate`)."""
    if items.gold is None:
        raise ValueError("no gold scores: give --gold-field")
    mask, fit_desc = parse_fit_on(fit_on, items, seed)
    comp = None
    if comparisons is not None and len(comparisons):
        comp = (comparisons["i"].to_numpy(np.int64), comparisons["j"].to_numpy(np.int64),
                comparisons["p"].to_numpy(np.float64))
    out = M.evaluate(scores, items.gold, items.groups, train_mask=mask, comparisons=comp)
    out["fit_on"] = fit_desc
    return out


def evaluate_run(items: Items, scores: np.ndarray, comparisons: pd.DataFrame, config: RankConfig,
                 judge_summary: dict, separation: dict) -> Tuple[dict, Optional[pd.DataFrame]]:
    """The metrics of a ranking run against gold, and its budget curve.

    The metrics of :func:`evaluate_scores`, with the judge's bias figures
    (``judge``), the separation counts (``separation``) and, with
    ``config.curve``, the budget curve's mean Spearman at each ``k``
    (``spearman_vs_comparisons``).

    Returns
    -------
    metrics : dict
    curve : pandas.DataFrame or None
        :func:`spearman_curve`, or None when ``config.curve`` is off.
    """
    mets = evaluate_scores(items, scores, fit_on=config.fit_on, seed=config.seed, comparisons=comparisons)
    mets["judge"] = {k: judge_summary[k] for k in ("position_bias", "order_consistency", "answer_mass_mean")
                     if k in judge_summary}
    mets["separation"] = {k: v for k, v in separation.items() if k != "per_group"}
    if not config.curve:
        return mets, None
    curve = spearman_curve(comparisons, len(items), items.gold, items.groups, solver=config.solver,
                           alpha=config.alpha, seed=config.seed, dispersion=config.dispersion)
    mets["spearman_vs_comparisons"] = (
        curve.groupby("k").agg(per_item=("per_item", "mean"), spearman=("spearman", "mean"))
        .reset_index().to_dict(orient="records")
    )
    return mets, curve
