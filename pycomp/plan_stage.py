"""The plan stage of a run: the pairs to judge, from the items and the run's settings.

The designs themselves are in :mod:`pycomp.plan`; this module only reads them
off a :class:`~pycomp.config.RankConfig`.
"""
from __future__ import annotations

import numpy as np

from pycomp import plan as P
from pycomp.config import RankConfig
from pycomp.items import Items, ItemsError

__all__ = ["plan_for", "comparisons_per_item"]


def plan_for(items: Items, config: RankConfig) -> np.ndarray:
    """The pairs to judge for these items and settings (within groups when there are groups).

    Returns
    -------
    numpy.ndarray of int64, shape (m, 2)
        Item indices of each pair.

    Raises
    ------
    ValueError
        ``per_item`` missing or not positive for a design that needs it; the
        active design (it has no plan before judging: :mod:`pycomp.active_stage`).
    ItemsError
        No pairs: every group has a single item.
    """
    if config.design == "active" and config.all_pairs:
        raise ValueError("give either --all-pairs or --design active, not both")
    design = config.design_name()
    if design in P.ADAPTIVE_DESIGNS:
        raise ValueError(f"--design {design} chooses its pairs between rounds of judging: use pycomp rank --design "
                         f"{design} --budget B (pycomp judge judges a fixed plan)")
    if design != "all" and (config.per_item is None or config.per_item <= 0):
        raise ValueError(f"--per-item must be > 0 for the {design} design (got {config.per_item})")
    pairs = P.plan_pairs(len(items), design, k=config.per_item, groups=items.groups, seed=config.seed)
    if len(pairs) == 0:
        raise ItemsError("the plan has no pairs: every group has a single item, so there is nothing to compare")
    return pairs


def comparisons_per_item(pairs: np.ndarray, n_items: int) -> float:
    """The mean number of pairs each item is in."""
    return float(P.degrees(pairs, n_items).mean())
