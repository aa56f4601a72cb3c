"""The items stage: read an items table, validate it, and name its items.

An item is named by its id, or by (group, id) when there are groups (from
--group-field, or one group per distinct context): ids need only be unique
within their group. :func:`find_items` looks the items named in another table
(pairs, scores, comparisons) up by the same rule.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Collection, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pycomp.config import RankConfig

__all__ = ["ItemsError", "Items", "validate_items", "load_items", "find_items", "pairs_from_table",
           "scores_from_table"]


class ItemsError(ValueError):
    """Items that cannot be ranked (missing fields, empty texts, duplicate ids, bad gold scores)."""


@dataclass
class Items:
    """Validated items.

    Attributes
    ----------
    ids : list of str
        Unique within each group (unique overall without groups).
    texts : list of str
    contexts : list of str or None
    groups : numpy.ndarray or None
        Group label of each item (as strings). An item is named by (group, id).
    gold : numpy.ndarray of float64 or None
    frame : pandas.DataFrame
        The table as read.
    group_field : str or None
        The --group-field (None without one, also when the groups are one per context).
    """

    ids: list
    texts: list
    contexts: Optional[list] = None
    groups: Optional[np.ndarray] = None
    gold: Optional[np.ndarray] = None
    frame: Optional[pd.DataFrame] = field(default=None, repr=False)
    group_field: Optional[str] = None

    def __len__(self) -> int:
        return len(self.ids)

    def name(self, k: int) -> str:
        """Item ``k`` as the user knows it: ``id 'S0'``, or ``id 'S0' in group 'A3'``."""
        group = f" in group {self.groups[k]!r}" if self.groups is not None else ""
        return f"id {self.ids[k]!r}{group}"


def _is_blank(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _require(frame: pd.DataFrame, column: Optional[str], option: str, source: str) -> None:
    if column is not None and column not in frame.columns:
        raise ItemsError(
            f"field {column!r} ({option}) is not in {source}; its fields are: {', '.join(map(str, frame.columns))}"
        )


def _row_name(row: int, ids: Optional[list]) -> str:
    return f"row {row + 1}" + (f" (id {ids[row]!r})" if ids is not None else "")


def _label(value) -> str:
    """A field value as a label; an integral float (a CSV reader's 3.0 for 3) loses its '.0'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_ids(frame: pd.DataFrame, id_field: Optional[str]) -> list:
    if id_field is None:
        return [str(k) for k in range(len(frame))]
    raw_ids = frame[id_field].tolist()
    for row, value in enumerate(raw_ids):
        if _is_blank(value):
            raise ItemsError(f"row {row + 1}: id field {id_field!r} is empty")
    return [_label(v) for v in raw_ids]


def _check_unique_ids(ids: list, groups: Optional[np.ndarray], config: RankConfig) -> None:
    """Ids must be unique within each group, or overall when there are no groups."""
    seen = {}
    for row, value in enumerate(ids):
        key = (groups[row] if groups is not None else None, value)
        if key not in seen:
            seen[key] = row
            continue
        rows = f"rows {seen[key] + 1} and {row + 1}"
        if config.group_field is not None:
            raise ItemsError(f"duplicate id {value!r} in field {config.id_field!r} within group {key[0]!r} "
                             f"(field {config.group_field!r}): {rows}; ids must be unique within a group")
        if groups is not None:
            raise ItemsError(f"duplicate id {value!r} in field {config.id_field!r} among items with the same "
                             f"context (field {config.context_field!r}): {rows}; ids must be unique within a context")
        raise ItemsError(f"duplicate id {value!r} in field {config.id_field!r}: {rows}; ids must be unique "
                         f"(or unique within groups: give --group-field)")


def _read_texts(frame: pd.DataFrame, field_name: str, kind: str, named_ids: Optional[list]) -> list:
    out = []
    for row, value in enumerate(frame[field_name].tolist()):
        if _is_blank(value):
            raise ItemsError(f"{_row_name(row, named_ids)}: {kind} field {field_name!r} is empty")
        out.append(str(value))
    return out


def _read_groups(frame: pd.DataFrame, config: RankConfig, contexts: Optional[list],
                 named_ids: Optional[list]) -> Optional[np.ndarray]:
    """Group labels from --group-field, else one group per distinct context, else None."""
    if config.group_field is not None:
        values = frame[config.group_field].tolist()
        for row, value in enumerate(values):
            if _is_blank(value):
                raise ItemsError(f"{_row_name(row, named_ids)}: group field {config.group_field!r} is empty")
        groups = np.array([_label(v) for v in values], dtype=object)
        if contexts is not None:
            first = {}
            for row, (g, c) in enumerate(zip(groups, contexts)):
                if g in first and contexts[first[g]] != c:
                    raise ItemsError(
                        f"{_row_name(row, named_ids)}: context differs from that of row {first[g] + 1} in the same "
                        f"group {g!r}; items compared together must share their context ({config.context_field!r})"
                    )
                first.setdefault(g, row)
        return groups
    if contexts is not None:
        # Pairs must share their context: compare only items with the same context,
        # numbered in order of first appearance.
        codes, _ = pd.factorize(pd.Series(contexts, dtype=object))
        return np.array([f"context-{k}" for k in codes], dtype=object)
    return None


def _read_gold(frame: pd.DataFrame, gold_field: str, named_ids: Optional[list]) -> np.ndarray:
    gold = np.empty(len(frame))
    for row, value in enumerate(frame[gold_field].tolist()):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not math.isfinite(number):
            raise ItemsError(f"{_row_name(row, named_ids)}: gold field {gold_field!r} = {value!r} is not a number")
        gold[row] = number
    return gold


def validate_items(frame: pd.DataFrame, config: RankConfig, source: str = "the items", *,
                   require_text: bool = True) -> Items:
    """Check an items table against the configured fields and return :class:`Items`.

    ``require_text=False`` skips the text field (``pycomp evaluate`` needs only ids and gold).
    With groups (--group-field, or one group per context with --context-field alone)
    an item is named by (group, id), so ids need only be unique within their group.

    Raises
    ------
    ItemsError
        Naming the field and the row: no rows, a missing field, an empty text or
        context, a duplicate id (within a group, when there are groups), a missing
        group, a gold score that is not a number, or a group whose items have
        different contexts. Rows count from 1.
    """
    if frame is None or len(frame) == 0:
        raise ItemsError(f"{source} has no rows: there is nothing to rank")
    for column, option in ((config.text_field if require_text else None, "--text-field"), (config.id_field, "--id-field"),
                           (config.group_field, "--group-field"), (config.context_field, "--context-field"),
                           (config.gold_field, "--gold-field")):
        _require(frame, column, option, source)
    frame = frame.reset_index(drop=True)
    ids = _read_ids(frame, config.id_field)
    named_ids = ids if config.id_field is not None else None
    texts = _read_texts(frame, config.text_field, "text", named_ids) if require_text else []
    contexts = None
    if config.context_field is not None:
        contexts = _read_texts(frame, config.context_field, "context", named_ids)
    groups = _read_groups(frame, config, contexts, named_ids)
    _check_unique_ids(ids, groups, config)
    gold = _read_gold(frame, config.gold_field, named_ids) if config.gold_field is not None else None
    return Items(ids=ids, texts=texts, contexts=contexts, groups=groups, gold=gold, frame=frame,
                 group_field=config.group_field)


def load_items(source: str, config: RankConfig, *, require_text: bool = True,
               given: Optional[Collection[str]] = None) -> Tuple[Items, RankConfig]:
    """Read ``source`` (a table file or ``example:NAME``) and validate it.

    For an example, the example's own settings (field names, attribute,
    comparisons per item) fill in the fields of ``config`` the user did not give.

    Parameters
    ----------
    source : str
    config : RankConfig
    require_text : bool
    given : collection of str, optional
        Names of the ``config`` fields the user set (the command line passes the
        options it was given); an example never replaces them, even with a value
        equal to the default. Default: the fields that differ from RankConfig's
        defaults.
    """
    from pycomp.io import read_table

    if str(source).startswith("example:"):
        from pycomp import examples

        frame, defaults = examples.load(str(source).split(":", 1)[1])
        if given is None:
            base = RankConfig()
            given = {key for key in defaults if getattr(config, key) != getattr(base, key)}
        for key, value in defaults.items():
            if key not in given:
                setattr(config, key, value)
        return validate_items(frame, config, source=str(source), require_text=require_text), config
    try:
        frame = read_table(source)
    except ValueError as exc:
        raise ItemsError(str(exc)) from None
    return validate_items(frame, config, source=os.fspath(source), require_text=require_text), config


def _item_keys(items: Items) -> Tuple[dict, dict]:
    by_key, by_id = {}, {}
    for k, item_id in enumerate(items.ids):
        by_key[(items.groups[k] if items.groups is not None else None, item_id)] = k
        by_id.setdefault(item_id, []).append(k)
    return by_key, by_id


def _group_hint(items: Items) -> str:
    if items.group_field is not None:
        return f"add a column 'group' holding each row's group (the items' field {items.group_field!r})"
    return ("give --group-field naming the field that tells the contexts apart, and add a column 'group' "
            "holding its value for each row")


def find_items(table: pd.DataFrame, items: Items, columns: Sequence[str], source: str) -> np.ndarray:
    """Item indices of the ids in ``columns`` of a pairs, scores or comparisons table.

    With grouped items and a ``group`` column (as pycomp writes one), each row's
    ids are looked up within that row's group; otherwise an id must name one item.

    Returns
    -------
    numpy.ndarray of int64, shape (len(table), len(columns))

    Raises
    ------
    ItemsError
        Naming the file, the 1-based row, the column and the id: an id that is
        no item's (in the row's group), or an id of items in several groups
        when the table has no ``group`` column.
    """
    by_key, by_id = _item_keys(items)
    if items.groups is not None and "group" in table.columns:
        groups = [None if _is_blank(v) else _label(v) for v in table["group"].tolist()]
    else:
        groups = [None] * len(table)
    out = np.empty((len(table), len(columns)), dtype=np.int64)
    for c, column in enumerate(columns):
        for row, (value, group) in enumerate(zip(table[column].tolist(), groups)):
            item_id = _label(value)
            where = f"{source}: row {row + 1}: {column} = {item_id!r}"
            if group is not None:
                if (group, item_id) not in by_key:
                    raise ItemsError(f"{where} is not an item id in group {group!r}")
                out[row, c] = by_key[(group, item_id)]
                continue
            found = by_id.get(item_id, [])
            if not found:
                raise ItemsError(f"{where} is not an item id")
            if len(found) > 1:
                shown = ", ".join(repr(items.groups[k]) for k in found[:3]) + (", ..." if len(found) > 3 else "")
                raise ItemsError(f"{where} is ambiguous: items of {len(found)} groups ({shown}) have this id; "
                                 f"{_group_hint(items)}")
            out[row, c] = found[0]
    return out


def _require_columns(table: pd.DataFrame, columns: Sequence[str], source: str, what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ItemsError(f"{source}: needs columns {', '.join(columns)} ({what}); has {list(map(str, table.columns))}")


def pairs_from_table(table: pd.DataFrame, items: Items, source: str) -> np.ndarray:
    """The pairs named by a table with columns ``a``, ``b`` (item ids) and, with groups, ``group``.

    Raises
    ------
    ItemsError
        A missing column, an unknown or ambiguous id (see :func:`find_items`), a
        pair of an item with itself, or a pair across groups. Rows count from 1.
    """
    _require_columns(table, ("a", "b"), source, "item ids")
    pairs = find_items(table, items, ("a", "b"), source)
    for row, (i, j) in enumerate(pairs):
        if i == j:
            raise ItemsError(f"{source}: row {row + 1}: a and b are the same item ({items.name(i)})")
        if items.groups is not None and items.groups[i] != items.groups[j]:
            raise ItemsError(f"{source}: row {row + 1}: a ({items.name(i)}) and b ({items.name(j)}) are in "
                             f"different groups; items are compared only within their group")
    return pairs


def scores_from_table(table: pd.DataFrame, items: Items, source: str) -> np.ndarray:
    """Each item's score from a table with columns ``id``, ``score`` (and ``group``, as ``pycomp rank`` writes).

    Returns
    -------
    numpy.ndarray of float64, shape (len(items),)

    Raises
    ------
    ItemsError
        A missing column, an unknown or ambiguous id, an item scored twice, a
        score that is not a number, or an item without a score. Rows count from 1.
    """
    _require_columns(table, ("id", "score"), source, "item ids and scores")
    index = find_items(table, items, ("id",), source)[:, 0]
    pred = np.full(len(items), np.nan)
    row_of = {}
    for row, (k, value) in enumerate(zip(index, table["score"].tolist())):
        if k in row_of:
            raise ItemsError(f"{source}: rows {row_of[k] + 1} and {row + 1} both score item {items.name(k)}")
        row_of[k] = row
        try:
            pred[k] = float(value)
        except (TypeError, ValueError):
            pred[k] = np.nan
        if isinstance(value, bool) or not math.isfinite(pred[k]):
            raise ItemsError(f"{source}: row {row + 1} (item {items.name(k)}): score = {value!r} is not a number")
    missing = [k for k in range(len(items)) if k not in row_of]
    if missing:
        raise ItemsError(f"{source} has no score for item {items.name(missing[0])} ({len(missing)} items missing)")
    return pred
