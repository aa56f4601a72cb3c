"""The solve stage of a run: scores from the judged comparisons, with :func:`pycomp.solve`."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["solve_scores"]


def solve_scores(n_items: int, comparisons: pd.DataFrame, solver: str = "bt", alpha: float = 1.0,
                 return_se: bool = True, bootstrap=None, seed: int = 0, dispersion: str = "none"):
    """Scores from combined comparisons (columns ``i``, ``j``, ``p``); returns the :class:`pycomp.Solution`.

    ``dispersion`` is the ``--dispersion`` text (auto, pearson, none or a number; see
    :mod:`pycomp.dispersion`).

    :class:`pycomp.GraphWarning` is not shown: pairs planned within groups make a
    graph in several pieces by design, and ``pycomp rank`` reports the pieces itself.
    """
    import pycomp
    from pycomp.dispersion import parse_option

    setting = parse_option(dispersion, solver, "--solver")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pycomp.GraphWarning)
        return pycomp.solve(
            comparisons["i"].to_numpy(np.int64), comparisons["j"].to_numpy(np.int64),
            comparisons["p"].to_numpy(np.float64), n_items=max(2, n_items), model=solver, alpha=alpha,
            return_se=return_se, bootstrap=bootstrap, seed=seed, dispersion=setting,
        )
