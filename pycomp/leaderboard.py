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


def format_leaderboard(frame, top: Optional[int] = None, level: Optional[float] = None) -> str:
    """The leaderboard as an aligned text table with a header row, best first.

    Columns (those the frame has): ``rank``, ``UB`` (the arena's "Rank (UB)"),
    ``id``, ``score``, the interval ``[low, high]``, ``ranks`` (the rank interval
    best-worst), ``P(best)``. ``level`` only labels the interval column.
    """
    rows = frame if top is None else frame.head(top)
    interval = "interval" if level is None else f"{100 * level:g}% interval"
    cols = [("rank", lambda r: f"{int(r['rank'])}", ">")]
    if "rank_ub" in frame:
        cols.append(("UB", lambda r: f"{int(r['rank_ub'])}", ">"))
    cols += [("id", lambda r: str(r["id"]), "<"), ("score", lambda r: f"{r['score']:+.4f}", ">")]
    if "low" in frame:
        cols.append((interval, lambda r: f"[{r['low']:+.4f}, {r['high']:+.4f}]", "<"))
    if "rank_best" in frame:
        cols.append(("ranks", lambda r: f"{int(r['rank_best'])}-{int(r['rank_worst'])}", "<"))
        cols.append(("P(best)", lambda r: f"{r['p_best']:.3f}", ">"))
    if "se" in frame and "low" not in frame:
        cols.append(("se", lambda r: f"{r['se']:.4f}", ">"))
    cells = [[fmt(r) for _, fmt, _ in cols] for _, r in rows.iterrows()]
    widths = [max([len(name)] + [len(c[k]) for c in cells]) for k, (name, _, _) in enumerate(cols)]

    def line(values):
        return "  ".join(f"{v:{align}{w}}" for v, w, (_, _, align) in zip(values, widths, cols)).rstrip()

    return "\n".join([line([name for name, _, _ in cols])] + [line(c) for c in cells])
