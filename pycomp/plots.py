"""PNG plots of a ranking run (matplotlib, imported lazily, Agg backend).

Each plot has a ``*_figure`` function that builds and returns the matplotlib
Figure (for tests and notebooks) and a function that writes it as a PNG.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pycomp.config import PathLike

SCORE_UNITS = {
    "bt": "PoE-BT log-strength",
    "gaussian": "PoE-Gaussian latent scale",
}


def score_label(solver: Optional[str] = None) -> str:
    """Axis label of the predicted score, with its units when the solver is known."""
    units = SCORE_UNITS.get(solver or "")
    return f"predicted score ({units})" if units else "predicted score"


def _signed(value: float) -> str:
    """``"+ 3"`` or ``"- 0.5"``: a term added to a formula."""
    return f"{'-' if value < 0 else '+'} {abs(value):.3g}"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _write(fig, path: PathLike) -> Path:
    """Write ``fig`` to ``path`` (folders created) and close it."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _finish(fig, ax) -> None:
    ax.grid(alpha=0.3)
    fig.tight_layout()


def predicted_vs_gold_figure(scores, gold, *, se=None, groups: Optional[Sequence] = None,
                             affine: Optional[tuple] = None, title: str = "", gold_label: str = "gold",
                             score_axis: str = "predicted score"):
    """Predicted scores (y, with ± 1 standard-error bars) against gold scores (x).

    Parameters
    ----------
    scores, gold : array-like, shape (n,)
    se : array-like, shape (n,), optional
        Standard error of each score, drawn as a vertical bar of ± 1 se
        (none for a non-finite se).
    groups : array-like, optional
        Colour points by group (only when there are at most 10 groups).
    affine : (a, b), optional
        The fitted map ``gold = a * score + b``, drawn as a line.
    title, gold_label, score_axis : str
        Title and axis labels (put the units in the labels).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    scores, gold = np.asarray(scores, float), np.asarray(gold, float)
    err = None if se is None else np.asarray(se, float)
    fig, ax = plt.subplots(figsize=(5.4, 4.4), dpi=120)
    size = 2.5 if len(scores) > 200 else 4
    style = dict(fmt="o", ms=size, elinewidth=0.7, capsize=0, alpha=0.75)
    bars = " ± 1 se" if err is not None else ""
    labels = np.asarray(groups).astype(str) if groups is not None else None
    if labels is not None and len(np.unique(labels)) <= 10:
        for label in np.unique(labels):
            sel = labels == label
            ax.errorbar(gold[sel], scores[sel], yerr=None if err is None else err[sel], label=f"{label}{bars}",
                        **style)
        legend_title = "group"
    else:
        ax.errorbar(gold, scores, yerr=err, color="C0", label=f"items{bars}", **style)
        legend_title = None
    if affine is not None and affine[0] and len(scores):
        a, b = affine
        xs = np.linspace(gold.min(), gold.max(), 50)
        ax.plot(xs, (xs - b) / a, color="black", lw=1, label=f"affine fit: gold = {a:.3g} × score {_signed(b)}")
    ax.legend(fontsize=7, title=legend_title, title_fontsize=7, loc="best")
    ax.set_xlabel(gold_label)
    ax.set_ylabel(score_axis)
    ax.set_title(title or "predicted vs gold", fontsize=10)
    _finish(fig, ax)
    return fig


def predicted_vs_gold(scores, gold, path: PathLike, **kwargs) -> Path:
    """Write :func:`predicted_vs_gold_figure` (same keyword arguments) to the PNG file ``path``."""
    return _write(predicted_vs_gold_figure(scores, gold, **kwargs), path)


def spearman_vs_budget_figure(curve, *, title: str = "", ylabel: str = "Spearman"):
    """Spearman correlation with gold against the comparisons per item.

    Parameters
    ----------
    curve : pandas.DataFrame
        Columns ``k``, ``per_item`` (mean comparisons per item) and ``spearman``,
        one row per random subsample of the judged comparisons: each is drawn as
        a dot, their mean at each ``k`` as the line.
    title, ylabel : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.8), dpi=120)
    grouped = curve.groupby("k", sort=True).agg(per_item=("per_item", "mean"), spearman=("spearman", "mean"))
    ax.scatter(curve["per_item"], curve["spearman"], s=10, alpha=0.35, color="C0",
               label="one random subsample of the judged pairs")
    ax.plot(grouped["per_item"], grouped["spearman"], marker="o", color="C0", label="mean over subsamples")
    ax.set_xlabel("comparisons per item (mean over items)")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Spearman vs number of comparisons", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    _finish(fig, ax)
    return fig


def spearman_vs_budget(curve, path: PathLike, **kwargs) -> Path:
    """Write :func:`spearman_vs_budget_figure` (same keyword arguments) to the PNG file ``path``."""
    return _write(spearman_vs_budget_figure(curve, **kwargs), path)
