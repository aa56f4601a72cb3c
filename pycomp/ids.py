"""Item ids (strings, any hashable labels) to the integer indices the solvers use."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

_SHOWN_IDS = 5


def encode_ids(
    a: Any,
    b: Any,
    items: Any = None,
    *,
    names: Tuple[str, str] = ("a", "b"),
    one_based_rows: bool = False,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map two columns of item ids to integer indices.

    Parameters
    ----------
    a, b : array_like, shape (m,)
        Ids of the first and second item of each comparison (strings, ints, ...).
    items : array_like, optional
        The full list of ids, e.g. to include items that were never compared.
        Default: the sorted unique ids of ``a`` and ``b``.
    names : tuple of str, default ("a", "b")
        What to call ``a`` and ``b`` in error messages, e.g. the table's column names.
    one_based_rows : bool, default False
        Name the offending entry as "row N: column 'NAME'" with N counted from 1
        (the data rows of a table) instead of "NAME[k] (0-based position)".

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
    a, b = _as_series(a), _as_series(b)
    if len(a) != len(b):
        raise ValueError(
            f"the id columns {names[0]!r} and {names[1]!r} have lengths {len(a)} and {len(b)}; they must match"
        )
    for name, col in zip(names, (a, b)):
        missing = col.isna().to_numpy()
        if missing.any():
            where = _where(name, int(np.argmax(missing)), one_based_rows)
            raise ValueError(f"{where} has no id: every comparison needs two item ids")
    if items is None:
        ids = pd.unique(pd.concat([a, b], ignore_index=True))
        try:
            ids = np.sort(ids)
        except TypeError:  # mixed id types: keep first-seen order
            pass
    else:
        ids = np.asarray(pd.unique(_as_series(items)), dtype=object)
    index = pd.Index(ids)
    out = []
    for name, col in zip(names, (a, b)):
        pos = index.get_indexer(col)
        if (pos < 0).any():
            row = int(np.argmax(pos < 0))
            raise ValueError(f"{_where(name, row, one_based_rows)} = {col.iloc[row]!r} is not among the given items")
        out.append(pos.astype(np.int64))
    return out[0], out[1], np.asarray(ids)


def solve_table(
    frame: pd.DataFrame,
    a: str = "a",
    b: str = "b",
    p: Optional[str] = "p",
    weight: Optional[str] = None,
    group: Optional[str] = None,
    **solve_kwargs: Any,
) -> pd.DataFrame:
    """Solve a table of comparisons whose items are named by ids.

    The table is checked before solving; an error names the column as the table
    calls it, the id and the row, counted from 1 over the data rows in the
    table's order (row 1 is the first comparison; a file's header is not counted).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per comparison.
    a, b : str
        Columns with the ids of the two items.
    p : str or None, default "p"
        Column with the probability that ``a`` beats ``b``, in [0, 1]. It must be in
        the table, the default "p" included. Pass ``p=None`` for hard outcomes:
        ``a`` won every comparison.
    weight : str or None
        Column with non-negative comparison weights.
    group : str or None
        Column with the group of each comparison (both items belong to it), for
        ids that are unique only within their group (SummEval's S0..S15 in every
        article): an item is then the pair (group, id). An empty group value is
        the group "".
    **solve_kwargs
        Passed to :func:`pycomp.solve` (model, alpha, return_se, ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``id``, ``score`` and ``se`` (NaN unless ``return_se=True``), one row per
        item; with ``group``, the columns ``group``, ``id``, ``score``, ``se``.

    Raises
    ------
    ValueError
        If a column is not in the table; a row has no id, compares an item with
        itself, has a probability that is not a number in [0, 1] or a weight that
        is not a finite number >= 0.
    pycomp.exceptions.NoOptimumError
        A ``ValueError``: with ``alpha=0``, a group of items never beat (or never
        lost to) the rest, so that maximum-likelihood scores do not exist. The
        message names up to five of their ids; ``items`` holds their indices in
        the ``id`` column of the result that could not be computed.
    """
    from pycomp.solve import solve

    _require_columns(frame, a, b, p, weight)
    if group is not None and group not in frame.columns:
        raise ValueError(f"column {group!r} (for group) is not in the table; columns are {list(frame.columns)}")
    i, j, ids = encode_ids(_ids(frame, a), _ids(frame, b), names=(a, b), one_based_rows=True)
    groups = None
    if group is not None:
        i, j, ids, groups = _within_groups(i, j, ids, frame[group])
    _require_distinct(i, j, ids, a, b, groups)
    probs = _probabilities(frame, p) if p is not None else None
    weights = _weights(frame, weight) if weight is not None else None
    try:
        sol = solve(i, j, probs, weights=weights, n_items=len(ids), **solve_kwargs)
    except ValueError as exc:
        if getattr(exc, "items", None) is None:
            raise
        raise _restated(exc, _no_optimum_message(exc, ids, groups)) from exc
    se = sol.se if sol.se is not None else np.full(len(ids), np.nan)
    columns = {"group": groups} if groups is not None else {}
    table = pd.DataFrame({**columns, "id": ids, "score": sol.scores, "se": se})
    table.attrs["solution"] = sol  # the Solution itself, for what the columns do not hold (bootstrap replicates)
    return table


def _within_groups(i: np.ndarray, j: np.ndarray, ids: np.ndarray, group: pd.Series):
    """Re-index items as (group, id) pairs, sorted by group, then id."""
    values = pd.Series(group.to_numpy(dtype=object)).fillna("")
    values = values.map(lambda v: v.item() if isinstance(v, np.generic) else v)
    codes, names = pd.factorize(values, sort=False)
    try:
        order = np.argsort(np.asarray(names, dtype=object), kind="stable")
    except TypeError:  # mixed group types: keep first-seen order
        order = np.arange(len(names))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    g = rank[codes]
    n = len(ids)
    keys, inverse = np.unique(np.concatenate([g * n + i, g * n + j]), return_inverse=True)
    m = len(i)
    group_names = np.asarray(names, dtype=object)[order]
    return inverse[:m].astype(np.int64), inverse[m:].astype(np.int64), ids[keys % n], group_names[keys // n]


def _as_series(values: Any) -> pd.Series:
    if isinstance(values, pd.Series):
        return pd.Series(values.to_numpy(dtype=object))
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"item ids must be 1-D, got an array of shape {arr.shape}")
    return pd.Series(arr)


def _where(name: str, position: int, one_based_rows: bool) -> str:
    if one_based_rows:
        return f"row {position + 1}: column {name!r}"
    return f"{name}[{position}] (0-based position)"


def _require_columns(frame: pd.DataFrame, a: str, b: str, p: Optional[str], weight: Optional[str]) -> None:
    columns = list(frame.columns)
    for field, column in (("a", a), ("b", b), ("weight", weight)):
        if column is not None and column not in frame.columns:
            raise ValueError(f"column {column!r} (for {field}) is not in the table; columns are {columns}")
    if p is not None and p not in frame.columns:
        raise ValueError(
            f"column {p!r} (for p, the probability that a beats b) is not in the table; columns are {columns}. "
            f"Pass p=COLUMN for the column that holds it, or p=None if a won every comparison"
        )
    if a == b:
        raise ValueError(f"a and b both name the column {a!r}: the two items of a comparison come from two columns")


def _ids(frame: pd.DataFrame, column: str) -> pd.Series:
    """The id column with empty or blank strings counted as missing."""
    values = pd.Series(frame[column].to_numpy(dtype=object))
    if frame[column].dtype.kind not in "OSU":
        return values
    blank = values.str.strip().eq("").to_numpy(dtype=bool)
    return values.mask(blank)


def _require_distinct(i: np.ndarray, j: np.ndarray, ids: np.ndarray, a: str, b: str, groups=None,
                      row_base: int = 1) -> None:
    """An error naming the first comparison of an item with itself, by its id.

    ``row_base=1``: "row N" counts the table's data rows from 1; ``row_base=0``: the
    comparison's 0-based position in the arrays.
    """
    same = i == j
    if same.any():
        row = int(np.argmax(same))
        item = _label(ids, groups, i[row])
        if row_base == 1:
            raise ValueError(f"row {row + 1}: {a} = {b} = {item} compares an item with itself")
        raise ValueError(f"{a}[{row}] == {b}[{row}] = {item}: comparison {row} (0-based) compares an item with itself")


def _label(ids: np.ndarray, groups, k: int) -> str:
    """An item as the user names it: its id, and its group when ids are per group."""
    name = repr(_plain(ids[k]))
    return name if groups is None else f"{name} (group {_plain(groups[k])!r})"


def _numbers(frame: pd.DataFrame, column: str) -> Tuple[np.ndarray, list]:
    """The column as float64, or an error naming the first entry that is not a number."""
    raw = frame[column].tolist()
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = (values.isna() & frame[column].notna()).to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"row {row + 1}: column {column!r} = {raw[row]!r} is not a number")
    return values.to_numpy(dtype=np.float64, na_value=np.nan), raw


def _first_nan(values: np.ndarray, column: str, what: str) -> None:
    nan = np.isnan(values)
    if nan.any():
        raise ValueError(f"row {int(np.argmax(nan)) + 1}: column {column!r} is empty (NaN); give {what}")


def _probabilities(frame: pd.DataFrame, column: str) -> np.ndarray:
    values, raw = _numbers(frame, column)
    _first_nan(values, column, "the probability that the first item wins, in [0, 1]")
    bad = ~((values >= 0.0) & (values <= 1.0))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"row {row + 1}: column {column!r} = {raw[row]!r} is not a probability in [0, 1]")
    return values


def _weights(frame: pd.DataFrame, column: str) -> np.ndarray:
    values, raw = _numbers(frame, column)
    _first_nan(values, column, "a weight >= 0")
    bad = ~(np.isfinite(values) & (values >= 0.0))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"row {row + 1}: column {column!r} = {raw[row]!r} is not a weight: it must be finite and >= 0")
    return values


def _no_optimum_message(exc: ValueError, ids: np.ndarray, groups=None) -> str:
    """Restate the solver's "no maximum-likelihood scores" error with the table's ids."""
    members = np.asarray(getattr(exc, "items"), dtype=np.int64)
    shown = ", ".join(_label(ids, groups, k) for k in members[:_SHOWN_IDS])
    more = f" and {len(members) - _SHOWN_IDS} more" if len(members) > _SHOWN_IDS else ""
    if len(members) == 1:
        group, outside, diverge = f"the item {shown}", "any other item it was compared with", "its score diverges"
        between = "it and the other items"
    else:
        group = f"the {len(members)} items {shown}{more}"
        outside, diverge = "any item outside this group", "their scores diverge"
        between = "them and the other items"
    limit = {"never beat": "-inf", "never lost to": "+inf"}.get(getattr(exc, "direction", None))
    if limit is None:
        what, limit = f"either never beat or never lost to {outside}", "infinity"
    else:
        what = f"{getattr(exc, 'direction')} {outside}"
    return (
        f"alpha = 0 but the maximum-likelihood scores do not exist: {group} {what}, so {diverge} "
        f"to {limit}. Use alpha > 0 (e.g. --alpha 1 on the command line, alpha=1.0 in Python) "
        f"or add comparisons between {between}"
    )


def _restated(exc: ValueError, message: str) -> ValueError:
    """The same kind of error as ``exc``, with its attributes, saying ``message``."""
    from pycomp.exceptions import NoOptimumError

    if isinstance(exc, NoOptimumError):
        return NoOptimumError(message, exc.items, exc.component, exc.direction)
    return ValueError(message)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, so that repr shows 3, not np.int64(3)."""
    return value.item() if isinstance(value, np.generic) else value
