"""The end-to-end ranking pipeline: items -> plan -> judge -> solve -> evaluate.

:func:`rank` is what ``pycomp rank`` runs. Each stage writes a plain file in
the output folder, so any stage can be rerun or inspected alone:

``items.jsonl``        the items as read (id, group, text, gold)
``pairs.csv``          the planned pairs: a, b, group, i, j (ids, their group, indices)
``judgements.jsonl``   raw both-order judgements, appended as they finish (resumable)
``comparisons.jsonl``  one row per pair: a, b, group, p (combined), p_ab, p_ba, ...
``scores.csv``         id, group, score, se
``metrics.json``       when gold scores are given
``predicted_vs_gold.png``, ``spearman_vs_comparisons.png``
``run.json``           every setting, versions, timings and the judge's bias report

With groups an item is named by (group, id), so ids need only be unique within
their group; every file above names items by both.
"""
from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Collection, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from pycomp import metrics as M
from pycomp import plan as P

PathLike = Union[str, os.PathLike]


class ItemsError(ValueError):
    """Items that cannot be ranked (missing fields, empty texts, duplicate ids, bad gold scores)."""


@dataclass
class RankConfig:
    """Every setting of a ranking run (recorded in run.json).

    See ``pycomp rank --help`` for the meaning of each field.
    """

    text_field: str = "text"
    attribute: str = "better"
    noun: str = "text"
    context_field: Optional[str] = None
    context_noun: str = "Context"
    group_field: Optional[str] = None
    id_field: Optional[str] = None
    gold_field: Optional[str] = None
    model: Optional[str] = None
    adapter: Optional[str] = None
    device: str = "auto"
    dtype: str = "auto"
    quantization: str = "none"
    template: Optional[str] = None
    system: Optional[str] = None
    labels: Tuple[str, str] = ("A", "B")
    per_item: Optional[float] = 4
    all_pairs: bool = False
    design: str = "random"
    seed: int = 0
    solver: str = "bt"
    alpha: float = 1.0
    batch_size: int = 16
    fit_on: Optional[str] = None
    plots: bool = True
    curve: bool = True
    progress: bool = True

    def design_name(self) -> str:
        return "all" if self.all_pairs else self.design


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


def plan_for(items: Items, config: RankConfig) -> np.ndarray:
    """The pairs to judge for these items and settings (within groups when there are groups)."""
    design = config.design_name()
    if design != "all" and (config.per_item is None or config.per_item <= 0):
        raise ValueError(f"--per-item must be > 0 for the {design} design (got {config.per_item})")
    pairs = P.plan_pairs(len(items), design, k=config.per_item, groups=items.groups, seed=config.seed)
    if len(pairs) == 0:
        raise ItemsError("the plan has no pairs: every group has a single item, so there is nothing to compare")
    return pairs


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


def solve_scores(n_items: int, comparisons: pd.DataFrame, solver: str = "bt", alpha: float = 1.0,
                 return_se: bool = True):
    """Scores from combined comparisons with :func:`pycomp.solve`; returns the Solution."""
    import warnings

    import pycomp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", getattr(pycomp, "GraphWarning", Warning))
        return pycomp.solve(
            comparisons["i"].to_numpy(np.int64), comparisons["j"].to_numpy(np.int64),
            comparisons["p"].to_numpy(np.float64), n_items=max(2, n_items), model=solver, alpha=alpha,
            return_se=return_se,
        )


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
                   repeats: int = 3, solver: str = "bt", alpha: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Spearman of the solved scores against gold as the comparisons per item grow.

    For each ``k`` the judged comparisons are subsampled to at most ``k`` per item
    (``repeats`` random subsamples), solved, and scored: per-group Spearman averaged
    over groups when ``groups`` is given, else overall Spearman.

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
            sol = solve_scores(n_items, sub, solver, alpha, return_se=False)
            if groups is not None:
                rho = M.grouped_correlation(sol.scores, gold, groups)["mean"]
            else:
                rho = M.spearman(sol.scores, gold)
            rows.append({"k": int(k), "seed": rep, "per_item": 2.0 * len(sel) / n_items, "n_pairs": int(len(sel)),
                         "spearman": rho})
    return pd.DataFrame(rows)


def versions() -> dict:
    """Versions of pycomp and the libraries a run depends on.

    A library the run did not import is looked up in the installed distributions,
    not imported: importing peft imports bitsandbytes, which logs a kernel notice.
    """
    from importlib import metadata

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("pycomp", "numpy", "pandas", "torch", "transformers", "peft", "gguf", "matplotlib"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(obj, path: PathLike) -> Path:
    """Write JSON atomically (NaN written as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_nan_to_none(obj), indent=2, default=_json_default, sort_keys=False)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
    return path


def _nan_to_none(obj):
    if isinstance(obj, dict):
        return {str(k): _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not math.isfinite(float(obj)):
        return None
    return obj


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


def rank(source: str, config: RankConfig, out_dir: PathLike, *, backend=None,
         echo: Callable[[str], None] = print, given: Optional[Collection[str]] = None) -> dict:
    """Run the whole pipeline and write the output folder.

    Parameters
    ----------
    source : str
        Items file (JSONL, CSV, TSV, Parquet) or ``example:NAME``.
    config : RankConfig
    out_dir : path
    backend : JudgeBackend, optional
        An already loaded judge (tests pass one to share a model); loaded from
        ``config`` when omitted.
    echo : callable
        Where progress lines go.
    given : collection of str, optional
        The ``config`` fields the user set; an example's settings never replace
        them (see :func:`load_items`).

    Returns
    -------
    dict
        The content of run.json (with ``metrics`` when gold scores were given).
    """
    from pycomp.io import write_table
    from pycomp.judge.prompts import load_template
    from pycomp.judge.run import PromptSettings, judge_pairs, summary_line, summary_warnings
    from pycomp.separation import adjacent_separation

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    items, config = load_items(source, config, given=given)
    template = load_template(config.template, system=config.system, labels=config.labels)
    if items.contexts is not None and not template.uses_context:
        raise ItemsError(f"--context-field {config.context_field!r} was given but template {template.name!r} has no "
                         f"context placeholder")
    pairs = plan_for(items, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups_col = items.groups if items.groups is not None else np.array([""] * len(items), dtype=object)
    item_table = pd.DataFrame({"id": items.ids, "group": groups_col, "text": items.texts})
    if items.gold is not None:
        item_table["gold"] = items.gold
    write_table(item_table, out_dir / "items.jsonl")
    write_table(pd.DataFrame({"a": [items.ids[i] for i in pairs[:, 0]], "b": [items.ids[j] for j in pairs[:, 1]],
                              "group": groups_col[pairs[:, 0]], "i": pairs[:, 0], "j": pairs[:, 1]}),
                out_dir / "pairs.csv")
    deg = P.degrees(pairs, len(items))
    echo(f"{len(items)} items, {len(pairs)} pairs ({config.design_name()} design, "
         f"{deg.mean():.1f} comparisons per item), {2 * len(pairs)} prompts (both orders)")

    t_load = time.perf_counter()
    if backend is None:
        from pycomp.judge.transformers_backend import TransformersBackend

        echo(f"loading judge {config.model or 'smollm2-135m'} ...")
        backend = TransformersBackend.load(config.model, adapter=config.adapter, device=config.device,
                                           dtype=config.dtype, quantization=config.quantization,
                                           labels=config.labels, progress=echo)
    load_seconds = time.perf_counter() - t_load

    settings = PromptSettings(attribute=config.attribute, noun=config.noun, context_noun=config.context_noun)
    result = judge_pairs(backend, template, items.texts, pairs, out=out_dir / "judgements.jsonl", ids=items.ids,
                         groups=items.groups, contexts=items.contexts, settings=settings,
                         batch_size=config.batch_size, progress=config.progress)
    comparisons = result.comparisons
    if "group" not in comparisons.columns:
        comparisons.insert(2, "group", groups_col[comparisons["i"].to_numpy()])
    write_table(comparisons, out_dir / "comparisons.jsonl")
    js = result.summary
    rate = f"{js['judgements_per_second']:.1f} prompts/s, " if js.get("judgements_per_second") else ""
    echo(f"judged {js['n_judged']} prompts in {js['seconds']:.1f} s ({rate}{js['n_reused']} reused from an "
         f"earlier run)")
    echo(summary_line(js))
    for warning in summary_warnings(js):
        echo(f"warning: {warning}")

    t_solve = time.perf_counter()
    sol = solve_scores(len(items), comparisons, config.solver, config.alpha, return_se=True)
    solve_seconds = time.perf_counter() - t_solve
    se = sol.se if sol.se is not None else np.full(len(items), np.nan)
    scores = pd.DataFrame({"id": items.ids, "group": groups_col, "score": sol.scores, "se": se})
    write_table(scores, out_dir / "scores.csv")
    separation, verdict = adjacent_separation(sol.scores, se, items.groups)
    echo(verdict)

    run = {
        "command": "rank",
        "items": str(source),
        "out": str(out_dir),
        "config": asdict(config),
        "n_items": len(items),
        "n_pairs": int(len(pairs)),
        "comparisons_per_item": float(deg.mean()),
        "judge": {"backend": backend.describe(), "template": template.fingerprint(), "summary": js},
        "solver": {"model": config.solver, "method": sol.method, "n_iter": sol.n_iter, "converged": sol.converged,
                   "n_components": sol.n_components, "alpha": config.alpha},
        "separation": separation,
        "versions": versions(),
        "timings": {"load_seconds": round(load_seconds, 3), "judge_seconds": js["seconds"],
                    "solve_seconds": round(solve_seconds, 4)},
        "files": {"items": "items.jsonl", "pairs": "pairs.csv", "judgements": "judgements.jsonl",
                  "comparisons": "comparisons.jsonl", "scores": "scores.csv"},
    }
    if sol.n_components > 1:
        how = "per group" if items.groups is not None else "with the prior (alpha) tying components"
        echo(f"note: the comparison graph has {sol.n_components} connected components; scores are comparable "
             f"only within a component ({how})")

    if items.gold is not None:
        mets = evaluate_scores(items, sol.scores, fit_on=config.fit_on, seed=config.seed, comparisons=comparisons)
        mets["judge"] = {k: js[k] for k in ("position_bias", "order_consistency", "answer_mass_mean") if k in js}
        mets["separation"] = {k: v for k, v in separation.items() if k != "per_group"}
        if config.curve:
            curve = spearman_curve(comparisons, len(items), items.gold, items.groups, solver=config.solver,
                                   alpha=config.alpha, seed=config.seed)
            write_table(curve, out_dir / "spearman_vs_comparisons.csv")
            mets["spearman_vs_comparisons"] = (
                curve.groupby("k").agg(per_item=("per_item", "mean"), spearman=("spearman", "mean"))
                .reset_index().to_dict(orient="records")
            )
            run["files"]["curve"] = "spearman_vs_comparisons.csv"
        write_json(mets, out_dir / "metrics.json")
        run["files"]["metrics"] = "metrics.json"
        run["metrics"] = {k: v for k, v in mets.items() if k not in ("spearman_per_group",)}
        if config.plots:
            from pycomp import plots

            rmse = mets.get("rmse_affine") or {}
            plots.predicted_vs_gold(sol.scores, items.gold, out_dir / "predicted_vs_gold.png", se=se,
                                    groups=items.groups, affine=(rmse.get("a"), rmse.get("b")) if rmse else None,
                                    title=f"{config.attribute}: Spearman {mets['spearman']:.3f}",
                                    gold_label=f"gold ({config.gold_field})",
                                    score_axis=plots.score_label(config.solver))
            run["files"]["plot_scatter"] = "predicted_vs_gold.png"
            if config.curve and len(curve):
                plots.spearman_vs_budget(curve, out_dir / "spearman_vs_comparisons.png",
                                         ylabel="Spearman (per group, mean)" if items.groups is not None else "Spearman")
                run["files"]["plot_curve"] = "spearman_vs_comparisons.png"
    run["timings"]["total_seconds"] = round(time.perf_counter() - t_start, 3)
    write_json(run, out_dir / "run.json")
    return run
