"""The report stage: the files of a run, its plots and its record (run.json).

Every file names items by id and group (an empty group without groups), so a
file can be read back with :func:`pycomp.items.find_items`.
"""
from __future__ import annotations

import json
import math
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from pycomp.config import PathLike, RankConfig
from pycomp.items import Items
from pycomp.plan_stage import comparisons_per_item

__all__ = ["write_json", "versions", "group_column", "items_table", "pairs_table", "scores_table", "with_group_column",
           "run_record", "plot_predicted_vs_gold", "write_metrics"]

# The files of a ranking run, by role (run.json lists them under "files").
RUN_FILES = {"items": "items.jsonl", "pairs": "pairs.csv", "judgements": "judgements.jsonl",
             "comparisons": "comparisons.jsonl", "scores": "scores.csv"}


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


def group_column(items: Items) -> np.ndarray:
    """Each item's group as written in the files: its group label, or ``""`` without groups."""
    return items.groups if items.groups is not None else np.array([""] * len(items), dtype=object)


def items_table(items: Items) -> pd.DataFrame:
    """items.jsonl: ``id``, ``group``, ``text`` (and ``gold``)."""
    table = pd.DataFrame({"id": items.ids, "group": group_column(items), "text": items.texts})
    if items.gold is not None:
        table["gold"] = items.gold
    return table


def pairs_table(items: Items, pairs: np.ndarray) -> pd.DataFrame:
    """pairs.csv: ``a``, ``b`` (ids), ``group``, ``i``, ``j`` (indices)."""
    return pd.DataFrame({"a": [items.ids[i] for i in pairs[:, 0]], "b": [items.ids[j] for j in pairs[:, 1]],
                         "group": group_column(items)[pairs[:, 0]], "i": pairs[:, 0], "j": pairs[:, 1]})


def with_group_column(comparisons: pd.DataFrame, items: Items) -> pd.DataFrame:
    """``comparisons`` with a ``group`` column after ``a``, ``b`` (added in place when missing)."""
    if "group" not in comparisons.columns:
        comparisons.insert(2, "group", group_column(items)[comparisons["i"].to_numpy()])
    return comparisons


def scores_table(items: Items, scores: np.ndarray, se: np.ndarray, solution=None, level: float = 0.9) -> pd.DataFrame:
    """scores.csv: ``id``, ``group``, ``score``, ``se``; with bootstrap replicates in ``solution`` also
    ``low``, ``high`` (the ``level`` interval), ``rank``, ``rank_best``, ``rank_worst`` and ``p_best``."""
    table = pd.DataFrame({"id": items.ids, "group": group_column(items), "score": scores, "se": se})
    if solution is not None and solution.replicates is not None:
        table["low"], table["high"] = solution.interval(level)
        table["rank"] = solution.ranks
        table["rank_best"], table["rank_worst"] = solution.rank_interval(level)
        table["p_best"] = solution.p_best
    return table


def run_record(source, out_dir: Path, config: RankConfig, items: Items, pairs: np.ndarray, *, backend, template,
               judge_summary: dict, solution, separation: dict, timings: dict) -> dict:
    """The record of a ranking run (run.json): every setting, the judge, the solver, versions, timings, files."""
    return {
        "command": "rank",
        "items": str(source),
        "out": str(out_dir),
        "config": asdict(config),
        "n_items": len(items),
        "n_pairs": int(len(pairs)),
        "comparisons_per_item": comparisons_per_item(pairs, len(items)),
        "judge": {"backend": backend.describe(), "template": template.fingerprint(), "summary": judge_summary},
        "solver": {"model": config.solver, "method": solution.method, "n_iter": solution.n_iter,
                   "converged": solution.converged, "n_components": solution.n_components, "alpha": config.alpha,
                   "dispersion": solution.dispersion, "dispersion_df": solution.dispersion_df},
        "separation": separation,
        "versions": versions(),
        "timings": timings,
        "files": dict(RUN_FILES),
    }


def plot_predicted_vs_gold(path: PathLike, scores: np.ndarray, items: Items, metrics: dict, *, se=None,
                           gold_field: Optional[str], title: str = "", solver: Optional[str] = None) -> Path:
    """predicted_vs_gold.png: the scores against gold, with the affine map of ``metrics`` when it has one."""
    from pycomp import plots

    rmse = metrics.get("rmse_affine") or {}
    return plots.predicted_vs_gold(scores, items.gold, path, se=se, groups=items.groups,
                                   affine=(rmse.get("a"), rmse.get("b")) if rmse else None, title=title,
                                   gold_label=f"gold ({gold_field})", score_axis=plots.score_label(solver))


def write_metrics(out_dir: Path, run: dict, metrics: dict, curve: Optional[pd.DataFrame], items: Items,
                  scores: np.ndarray, se: np.ndarray, config: RankConfig) -> None:
    """Write metrics.json, the budget curve and the plots of a run with gold; list them in ``run``."""
    from pycomp.io import write_table

    if curve is not None:
        write_table(curve, out_dir / "spearman_vs_comparisons.csv")
        run["files"]["curve"] = "spearman_vs_comparisons.csv"
    write_json(metrics, out_dir / "metrics.json")
    run["files"]["metrics"] = "metrics.json"
    run["metrics"] = {k: v for k, v in metrics.items() if k not in ("spearman_per_group",)}
    if not config.plots:
        return
    from pycomp import plots

    plot_predicted_vs_gold(out_dir / "predicted_vs_gold.png", scores, items, metrics, se=se,
                           gold_field=config.gold_field, solver=config.solver,
                           title=f"{config.attribute}: Spearman {metrics['spearman']:.3f}")
    run["files"]["plot_scatter"] = "predicted_vs_gold.png"
    if curve is not None and len(curve):
        plots.spearman_vs_budget(curve, out_dir / "spearman_vs_comparisons.png",
                                 ylabel="Spearman (per group, mean)" if items.groups is not None else "Spearman")
        run["files"]["plot_curve"] = "spearman_vs_comparisons.png"
