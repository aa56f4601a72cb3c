"""PNG plots of a ranking run (matplotlib, imported lazily, Agg backend)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

PathLike = Union[str, os.PathLike]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, ax, path: PathLike) -> Path:
    """Grid, tight layout, write ``path`` (folders created) and close the figure."""
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def predicted_vs_gold(scores, gold, path: PathLike, *, groups: Optional[Sequence] = None,
                      affine: Optional[tuple] = None, title: str = "", gold_label: str = "gold") -> Path:
    """Scatter of predicted scores against gold scores, with the fitted affine map.

    Parameters
    ----------
    scores, gold : array-like, shape (n,)
    path : path
        PNG file to write.
    groups : array-like, optional
        Colour points by group (only when there are at most 10 groups).
    affine : (a, b), optional
        Draw ``gold = a * score + b``.
    """
    plt = _pyplot()
    scores, gold = np.asarray(scores, float), np.asarray(gold, float)
    fig, ax = plt.subplots(figsize=(5.0, 4.2), dpi=120)
    if groups is not None and len(np.unique(np.asarray(groups))) <= 10:
        labels = np.asarray(groups)
        for label in np.unique(labels):
            sel = labels == label
            ax.scatter(scores[sel], gold[sel], s=18, alpha=0.8, label=str(label))
        ax.legend(fontsize=7, title="group", title_fontsize=7, loc="best")
    else:
        ax.scatter(scores, gold, s=12 if len(scores) > 200 else 18, alpha=0.6)
    if affine is not None and len(scores):
        a, b = affine
        xs = np.linspace(scores.min(), scores.max(), 50)
        ax.plot(xs, a * xs + b, color="black", lw=1, label="affine fit")
    ax.set_xlabel("predicted score")
    ax.set_ylabel(gold_label)
    ax.set_title(title or "predicted vs gold", fontsize=10)
    return _save(plt, fig, ax, path)


def spearman_vs_budget(curve, path: PathLike, *, title: str = "", ylabel: str = "Spearman") -> Path:
    """Spearman correlation against comparisons per item.

    Parameters
    ----------
    curve : pandas.DataFrame
        Columns ``per_item`` (mean comparisons per item) and ``spearman``; an
        optional ``seed`` column gives repeated subsamples, drawn as points with
        their mean as a line.
    path : path
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.6), dpi=120)
    grouped = curve.groupby("k", sort=True).agg(per_item=("per_item", "mean"), spearman=("spearman", "mean"))
    ax.scatter(curve["per_item"], curve["spearman"], s=10, alpha=0.35, color="C0")
    ax.plot(grouped["per_item"], grouped["spearman"], marker="o", color="C0")
    ax.set_xlabel("comparisons per item")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Spearman vs number of comparisons", fontsize=10)
    return _save(plt, fig, ax, path)
