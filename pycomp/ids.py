"""Item ids (strings, any hashable labels) to the integer indices the solvers use."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import pandas as pd


def encode_ids(a: Any, b: Any, items: Any = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map two columns of item ids to integer indices.

    Parameters
    ----------
    a, b : array_like, shape (m,)
        Ids of the first and second item of each comparison (strings, ints, ...).
    items : array_like, optional
        The full list of ids, e.g. to include items that were never compared.
        Default: the sorted unique ids of ``a`` and ``b``.

    Returns
    -------
    i, j : ndarray of int64, shape (m,)
        Positions of ``a`` and ``b`` in ``ids``.
    ids : ndarray, shape (n_items,)
        The id of each index.

    Raises
    ------
    ValueError
        If the lengths differ, an id is missing (NaN/None), or ``items`` does not
        contain an id of ``a`` or ``b`` (the message names the column and row).
    """
    a = pd.Series(np.asarray(a, dtype=object) if not isinstance(a, pd.Series) else a.to_numpy(dtype=object))
    b = pd.Series(np.asarray(b, dtype=object) if not isinstance(b, pd.Series) else b.to_numpy(dtype=object))
    if a.ndim != 1 or len(a) != len(b):
        raise ValueError(f"the two id columns have lengths {len(a)} and {len(b)}; they must match")
    for name, col in (("a", a), ("b", b)):
        missing = col.isna().to_numpy()
        if missing.any():
            raise ValueError(f"{name}[{int(np.argmax(missing))}] is missing: every comparison needs two item ids")
    if items is None:
        ids = pd.unique(pd.concat([a, b], ignore_index=True))
        try:
            ids = np.sort(ids)
        except TypeError:  # mixed id types: keep first-seen order
            pass
    else:
        ids = np.asarray(pd.unique(pd.Series(np.asarray(items, dtype=object))), dtype=object)
    index = pd.Index(ids)
    out = []
    for name, col in (("a", a), ("b", b)):
        pos = index.get_indexer(col)
        if (pos < 0).any():
            row = int(np.argmax(pos < 0))
            raise ValueError(f"{name}[{row}] = {col.iloc[row]!r} is not among the given items")
        out.append(pos.astype(np.int64))
    return out[0], out[1], np.asarray(ids)


def solve_table(
    frame: pd.DataFrame,
    a: str = "a",
    b: str = "b",
    p: Optional[str] = "p",
    weight: Optional[str] = None,
    **solve_kwargs: Any,
) -> pd.DataFrame:
    """Solve a table of comparisons whose items are named by ids.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per comparison.
    a, b : str
        Columns with the ids of the two items.
    p : str or None
        Column with the probability that ``a`` beats ``b``. If None, or if the
        default column "p" is absent, ``a`` won every comparison.
    weight : str or None
        Column with comparison weights.
    **solve_kwargs
        Passed to :func:`pycomp.solve` (model, alpha, return_se, ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``score`` and ``se`` (NaN unless ``return_se=True``), one row per item.
    """
    from pycomp.solve import solve

    for field, column in (("a", a), ("b", b), ("weight", weight)):
        if column is not None and column not in frame.columns:
            raise ValueError(f"column {column!r} (for {field}) is not in the table; columns are {list(frame.columns)}")
    if p is not None and p not in frame.columns:
        if p != "p":
            raise ValueError(f"column {p!r} (for p) is not in the table; columns are {list(frame.columns)}")
        p = None
    i, j, ids = encode_ids(frame[a], frame[b])
    probs = _numeric(frame, p) if p is not None else None
    weights = _numeric(frame, weight) if weight is not None else None
    sol = solve(i, j, probs, weights=weights, n_items=len(ids), **solve_kwargs)
    se = sol.se if sol.se is not None else np.full(len(ids), np.nan)
    return pd.DataFrame({"id": ids, "score": sol.scores, "se": se})


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise ValueError(f"{column}[{row}] = {frame[column].iloc[row]!r} is not a number")
    return values.to_numpy(dtype=np.float64)
