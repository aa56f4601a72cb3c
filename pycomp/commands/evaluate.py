"""``pycomp evaluate``: scores from a file against the items' gold scores."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pycomp.commands import options as opts


def _se_from_table(table, items, source: str):
    """Each item's standard error from the scores table's ``se`` column (None without one)."""
    import numpy as np
    import pandas as pd

    from pycomp.items import find_items

    if "se" not in table.columns:
        return None
    se = np.full(len(items), np.nan)
    se[find_items(table, items, ("id",), source)[:, 0]] = pd.to_numeric(table["se"], errors="coerce").to_numpy(float)
    return se


@opts.takes("ctx", "scores", "items", "gold_field", "id_field", "group_field", "fit_on", "comparisons", "out", "plots",
            "seed")
def evaluate_command(
    ctx: typer.Context,
    scores: Path = typer.Argument(..., help="Scores file (from pycomp rank/solve): columns id and score (and group, matched with --group-field)."),
    items: str = typer.Option(..., "--items", help="Items file (or example:NAME) holding the gold scores."),
    gold_field: str = typer.Option(..., "--gold-field", help="Field of the items with gold scores."),
    id_field: Optional[str] = typer.Option(None, "--id-field", help="Field of the items matching the scores' id (default: row numbers)."),
    group_field: Optional[str] = typer.Option(None, "--group-field", help="Evaluate per group, then average; items are matched by (group, id) when the scores have a group column."),
    comparisons: Optional[Path] = typer.Option(None, "--comparisons", help="Comparisons file (a, b, p): adds the judge's agreement with gold."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="metrics.json to write."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for predicted_vs_gold.png."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random items a --fit-on fraction draws."),
    **options,
) -> None:
    """Score predictions against gold: Spearman/Pearson (overall, per group), pairwise accuracy, affine RMSE."""
    import json

    from pycomp.config import RankConfig
    from pycomp.evaluate import evaluate_scores
    from pycomp.io import read_table
    from pycomp.items import ItemsError, find_items, load_items, scores_from_table
    from pycomp.report import plot_predicted_vs_gold, write_json

    try:
        config = RankConfig(id_field=id_field, group_field=group_field, gold_field=gold_field)
        table = read_table(scores)
        frame_items, config = load_items(items, config, require_text=False, given=opts.given(ctx))
        pred = scores_from_table(table, frame_items, str(scores))
        comp = None
        if comparisons is not None:
            comp = read_table(comparisons)
            if not {"a", "b", "p"} <= set(comp.columns):
                raise ItemsError(f"{comparisons}: needs columns a, b, p; has {list(map(str, comp.columns))}")
            index = find_items(comp, frame_items, ("a", "b"), str(comparisons))
            comp = comp.assign(i=index[:, 0], j=index[:, 1])
        mets = evaluate_scores(frame_items, pred, fit_on=options["fit_on"], seed=seed, comparisons=comp)
        if out is not None:
            write_json(mets, out)
        if plots is not None:
            plot_predicted_vs_gold(Path(plots) / "predicted_vs_gold.png", pred, frame_items, mets,
                                   se=_se_from_table(table, frame_items, str(scores)), gold_field=gold_field)
    except opts.ERRORS as exc:
        opts.fail(exc)
        return
    shown = {k: v for k, v in mets.items() if k not in ("spearman_per_group",)}
    typer.echo(json.dumps(shown, indent=2, default=float))
