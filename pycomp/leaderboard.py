"""A leaderboard view of a solve, like the arena leaderboards: rank, score, interval, rank interval."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from pycomp.bootstrap import check_level

COLUMNS = ("rank", "rank_ub", "id", "score", "low", "high", "rank_best", "rank_worst", "p_best", "se")


def leaderboard(sol, ids: Optional[Sequence] = None, level: float = 0.9):
    """One row per item, best first.

    Columns: ``rank`` (by score, 1 = best), ``rank_ub`` (the arena's "Rank (UB)":
    1 + the number of items whose interval lies wholly above this item's),
    ``id``, ``score``, ``low`` and ``high`` (the ``level`` interval, see
    :meth:`pycomp.Solution.interval`), ``rank_best`` and ``rank_worst`` (the rank
    interval), ``p_best`` (P(ranked first)) and ``se``. Columns that the solution
    cannot give (no replicates, no se) are left out.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    level = check_level(level)
    n = sol.n_items
    ids = np.arange(n) if ids is None else np.asarray(ids, dtype=object)
    if ids.shape[0] != n:
        raise ValueError(f"ids has {ids.shape[0]} entries but the solution scores {n} items")
    data = {"rank": sol.ranks, "id": ids, "score": sol.scores}
    if sol.replicates is not None or sol.se is not None:
        low, high = sol.interval(level)
        above = np.sort(low)
        data["rank_ub"] = n - np.searchsorted(above, high, side="right") + 1
        data["low"], data["high"] = low, high
    if sol.replicates is not None:
        data["rank_best"], data["rank_worst"] = sol.rank_interval(level)
        data["p_best"] = sol.p_best
    if sol.se is not None:
        data["se"] = sol.se
    frame = pd.DataFrame({c: data[c] for c in COLUMNS if c in data})
    return frame.sort_values(["rank", "score"], ascending=[True, False], kind="stable").reset_index(drop=True)


def format_leaderboard(frame, top: Optional[int] = None) -> str:
    """The leaderboard as aligned text: ``rank (ub)  id  score [low, high]  ranks best-worst  p_best``."""
    rows = frame if top is None else frame.head(top)
    lines = []
    for _, r in rows.iterrows():
        parts = [f"{int(r['rank']):>4}"]
        if "rank_ub" in r:
            parts.append(f"(ub {int(r['rank_ub']):>3})")
        parts.append(f"{str(r['id']):<24}")
        parts.append(f"{r['score']:+.4f}")
        if "low" in r:
            parts.append(f"[{r['low']:+.4f}, {r['high']:+.4f}]")
        if "rank_best" in r:
            parts.append(f"ranks {int(r['rank_best'])}-{int(r['rank_worst'])}")
            parts.append(f"P(best) {r['p_best']:.3f}")
        lines.append("  ".join(parts))
    return "\n".join(lines)
