"""The end-to-end ranking pipeline: items -> plan -> judge -> solve -> evaluate.

:func:`rank` is what ``pycomp rank`` runs. Each stage writes a plain file in
the output folder, so any stage can be rerun or inspected alone:

``items.jsonl``        the items as read (id, group, text, gold)
``pairs.csv``          the planned pairs (ids and indices)
``judgements.jsonl``   raw both-order judgements, appended as they finish (resumable)
``comparisons.jsonl``  one row per pair: a, b, p (combined), p_ab, p_ba, ...
``scores.csv``         id, group, score, se
``metrics.json``       when gold scores are given
``predicted_vs_gold.png``, ``spearman_vs_comparisons.png``
``run.json``           every setting, versions, timings and the judge's bias report
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
from typing import Callable, Optional, Sequence, Tuple, Union

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
    texts : list of str
    contexts : list of str or None
    groups : numpy.ndarray or None
        Group label of each item (as strings).
    gold : numpy.ndarray of float64 or None
    frame : pandas.DataFrame
        The table as read.
    """

    ids: list
    texts: list
    contexts: Optional[list] = None
    groups: Optional[np.ndarray] = None
    gold: Optional[np.ndarray] = None
    frame: Optional[pd.DataFrame] = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.ids)


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


def validate_items(frame: pd.DataFrame, config: RankConfig, source: str = "the items", *,
                   require_text: bool = True) -> Items:
    """Check an items table against the configured fields and return :class:`Items`.

    ``require_text=False`` skips the text field (``pycomp evaluate`` needs only ids and gold).

    Raises
    ------
    ItemsError
        Naming the field and the row: no rows, a missing field, an empty text or
        context, a duplicate id, a missing group, a gold score that is not a number,
        or a group whose items have different contexts. Rows count from 1.
    """
    if frame is None or len(frame) == 0:
        raise ItemsError(f"{source} has no rows: there is nothing to rank")
    for column, option in ((config.text_field if require_text else None, "--text-field"), (config.id_field, "--id-field"),
                           (config.group_field, "--group-field"), (config.context_field, "--context-field"),
                           (config.gold_field, "--gold-field")):
        _require(frame, column, option, source)
    frame = frame.reset_index(drop=True)
    if config.id_field is not None:
        raw_ids = frame[config.id_field].tolist()
        for row, value in enumerate(raw_ids):
            if _is_blank(value):
                raise ItemsError(f"row {row + 1}: id field {config.id_field!r} is empty")
        ids = [str(v) if not isinstance(v, float) or not v.is_integer() else str(int(v)) for v in raw_ids]
        seen = {}
        for row, value in enumerate(ids):
            if value in seen:
                raise ItemsError(
                    f"duplicate id {value!r} in field {config.id_field!r}: rows {seen[value] + 1} and {row + 1}; "
                    f"ids must be unique"
                )
            seen[value] = row
    else:
        ids = [str(k) for k in range(len(frame))]
    named_ids = ids if config.id_field is not None else None

    texts = []
    for row, value in enumerate(frame[config.text_field].tolist() if require_text else []):
        if _is_blank(value):
            raise ItemsError(f"{_row_name(row, named_ids)}: text field {config.text_field!r} is empty")
        texts.append(str(value))

    groups = None
    if config.group_field is not None:
        values = frame[config.group_field].tolist()
        for row, value in enumerate(values):
            if _is_blank(value):
                raise ItemsError(f"{_row_name(row, named_ids)}: group field {config.group_field!r} is empty")
        groups = np.array([str(v) for v in values], dtype=object)

    contexts = None
    if config.context_field is not None:
        contexts = []
        for row, value in enumerate(frame[config.context_field].tolist()):
            if _is_blank(value):
                raise ItemsError(f"{_row_name(row, named_ids)}: context field {config.context_field!r} is empty")
            contexts.append(str(value))
        if groups is None:
            # Pairs must share their context: compare only items with the same context.
            _, inverse = np.unique(np.array(contexts, dtype=object), return_inverse=True)
            groups = np.array([f"context-{k}" for k in inverse], dtype=object)
        else:
            first = {}
            for row, (g, c) in enumerate(zip(groups, contexts)):
                if g in first and contexts[first[g]] != c:
                    raise ItemsError(
                        f"{_row_name(row, named_ids)}: context differs from that of row {first[g] + 1} in the same "
                        f"group {g!r}; items compared together must share their context ({config.context_field!r})"
                    )
                first.setdefault(g, row)

    gold = None
    if config.gold_field is not None:
        gold = np.empty(len(frame))
        for row, value in enumerate(frame[config.gold_field].tolist()):
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = float("nan")
            if isinstance(value, bool) or not math.isfinite(number):
                raise ItemsError(
                    f"{_row_name(row, named_ids)}: gold field {config.gold_field!r} = {value!r} is not a number"
                )
            gold[row] = number
    return Items(ids=ids, texts=texts, contexts=contexts, groups=groups, gold=gold, frame=frame)


def load_items(source: str, config: RankConfig, *, require_text: bool = True) -> Tuple[Items, RankConfig]:
    """Read ``source`` (a table file or ``example:NAME``) and validate it.

    For an example, the example's own field names and attribute fill in whatever
    ``config`` leaves at its defaults.
    """
    from pycomp.io import read_table

    if str(source).startswith("example:"):
        from pycomp import examples

        frame, defaults = examples.load(str(source).split(":", 1)[1])
        base = RankConfig()
        for key, value in defaults.items():
            if getattr(config, key) == getattr(base, key):
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
    """Versions of pycomp and the libraries a run depends on."""
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("pycomp", "numpy", "pandas", "torch", "transformers", "peft", "gguf", "matplotlib"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        out[name] = getattr(module, "__version__", "?")
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
         echo: Callable[[str], None] = print) -> dict:
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

    Returns
    -------
    dict
        The content of run.json (with ``metrics`` when gold scores were given).
    """
    from pycomp.io import write_table
    from pycomp.judge.prompts import load_template
    from pycomp.judge.run import PromptSettings, judge_pairs, summary_warnings

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    items, config = load_items(source, config)
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
                              "i": pairs[:, 0], "j": pairs[:, 1]}), out_dir / "pairs.csv")
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
                         contexts=items.contexts, settings=settings, batch_size=config.batch_size,
                         progress=config.progress)
    comparisons = result.comparisons
    comparisons.insert(2, "group", groups_col[comparisons["i"].to_numpy()])
    write_table(comparisons, out_dir / "comparisons.jsonl")
    js = result.summary
    rate = f", {js['judgements_per_second']:.1f} comparisons/s" if js.get("judgements_per_second") else ""
    echo(f"judged {js['n_judged']} prompts in {js['seconds']:.1f} s{rate} ({js['n_reused']} reused); "
         f"position bias {js['position_bias']:+.3f}, order consistency {js['order_consistency']:.2f}, "
         f"answer-token mass {js['answer_mass_mean']:.2f}")
    for warning in summary_warnings(js):
        echo(f"warning: {warning}")

    t_solve = time.perf_counter()
    sol = solve_scores(len(items), comparisons, config.solver, config.alpha, return_se=True)
    solve_seconds = time.perf_counter() - t_solve
    se = sol.se if sol.se is not None else np.full(len(items), np.nan)
    scores = pd.DataFrame({"id": items.ids, "group": groups_col, "score": sol.scores, "se": se})
    write_table(scores, out_dir / "scores.csv")

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
            plots.predicted_vs_gold(sol.scores, items.gold, out_dir / "predicted_vs_gold.png",
                                    groups=items.groups, affine=(rmse.get("a"), rmse.get("b")) if rmse else None,
                                    title=f"{config.attribute}: Spearman {mets['spearman']:.3f}",
                                    gold_label=f"gold ({config.gold_field})")
            run["files"]["plot_scatter"] = "predicted_vs_gold.png"
            if config.curve and len(curve):
                plots.spearman_vs_budget(curve, out_dir / "spearman_vs_comparisons.png",
                                         ylabel="Spearman (per group, mean)" if items.groups is not None else "Spearman")
                run["files"]["plot_curve"] = "spearman_vs_comparisons.png"
    run["timings"]["total_seconds"] = round(time.perf_counter() - t_start, 3)
    write_json(run, out_dir / "run.json")
    return run
