"""``pycomp rank``: the whole pipeline, items to scores and metrics.

torch and transformers are imported inside the command, so ``--help`` is fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from pycomp.commands import options as opts


def _metrics_lines(mets: dict, gold_field: str) -> List[str]:
    """The metrics against gold, each figure with what it means (printed by ``pycomp rank``)."""
    within = " within a group" if mets.get("spearman_per_group_mean") is not None else ""
    line = (f"vs gold ({gold_field}): Spearman {mets['spearman']:.3f}, Pearson {mets['pearson']:.3f} "
            f"(correlations of the scores with gold over all items; 1 = same order/line)")
    if within:
        line += (f", per-group Spearman {mets['spearman_per_group_mean']:.3f} "
                 f"(mean over the {mets['n_groups']} groups)")
    line += (f", pairwise accuracy {mets['pairwise_accuracy']:.3f} (share of item pairs{within} with different "
             f"gold that the scores order the same way; 0.5 = chance)")
    lines = [line]
    rmse = mets.get("rmse_affine")
    if rmse:
        where = (f"fitted on {mets.get('fit_on', 'the training items')}, evaluated on the {rmse['n_eval']} held-out "
                 f"items" if rmse["evaluated_on"] == "held-out"
                 else f"fitted and evaluated on all {rmse['n_eval']} items (in-sample)")
        sign = "-" if rmse["b"] < 0 else "+"
        lines.append(f"RMSE {rmse['rmse']:.3f} (in gold units) of the affine map gold = {rmse['a']:.3g} * score "
                     f"{sign} {abs(rmse['b']):.3g}, {where}")
    return lines


@opts.takes("ctx", "items", "out", *opts.ITEM_FIELDS, "gold_field", *opts.JUDGE_MODEL, *opts.PAIR_PLAN, "budget",
            "batch_pairs", "stop_threshold", "solver", "alpha", "dispersion", "bootstrap", "batch_size", "threads",
            "fit_on", "calibrate", "plots", "progress")
def rank_command(
    ctx: typer.Context,
    items: str = typer.Argument(..., help=opts.ITEMS_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created; rerunning resumes the judging)."),
    gold_field: Optional[str] = typer.Option(None, "--gold-field", help="Field with gold scores: enables metrics.json and the plots."),
    solver: str = typer.Option("bt", "--solver", help="bt (PoE Bradley-Terry) or gaussian (PoE-Gaussian)."),
    alpha: float = typer.Option(1.0, "--alpha", help="Solver prior strength."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write PNG plots when gold is given."),
    **options,
) -> None:
    """Plan pairs, judge them with an LLM in both orders, solve for scores, evaluate.

    Built-in example (120 prompts; about two minutes on a busy 2-core CPU):

    pycomp rank example:reviews --out runs/reviews

    SummEval style: summaries compared only with summaries of the same article, the
    article shown as context (ids need only be unique within their group: every
    output names an item by its group and id):

    pycomp rank summeval.jsonl --text-field summary --context-field article
    --context-noun Article --group-field article_id --id-field summary_id
    --gold-field coherence --noun summary --attribute "more coherent"
    --per-item 4 --out runs/coherence

    Rerunning the same command resumes the judging where it stopped.

    What it prints: the judge's position bias, order consistency and answer-token
    mass; a separation verdict (how many adjacent pairs of the ranking differ by
    more than their combined standard error, i.e. whether the ranking stands out
    from its own noise); with --gold-field, the agreement with gold. Each figure
    is followed by what it means; run.json and metrics.json hold them all.
    """
    opts.wait_passively()
    from pycomp.pipeline import rank

    threads = options.pop("threads")
    try:
        config = opts.rank_config(options, gold_field=gold_field, solver=solver, alpha=alpha, plots=plots)
        opts.set_threads(threads)
        run = rank(items, config, out, echo=typer.echo, given=opts.given(ctx))
    except opts.ERRORS as exc:
        opts.fail(exc)
        return
    mets = run.get("metrics")
    if mets:
        for line in _metrics_lines(mets, run["config"]["gold_field"]):
            typer.echo(line)
    files = run["files"]
    typer.echo(f"scores: {out / files['scores']}")
    if "metrics" in files:
        typer.echo(f"metrics: {out / files['metrics']}")
    for key in ("plot_scatter", "plot_curve"):
        if key in files:
            typer.echo(f"plot: {out / files[key]}")
    typer.echo(f"run settings: {out / 'run.json'} ({run['timings']['total_seconds']:.0f} s in all)")


# Names this module held before each command had its own module (kept for old imports).
_MOVED = {
    "judge_command": ("pycomp.commands.judge", "judge_command"),
    "evaluate_command": ("pycomp.commands.evaluate", "evaluate_command"),
    "models_app": ("pycomp.commands.models", "app"),
    "models_fetch": ("pycomp.commands.models", "models_fetch"),
    "models_list": ("pycomp.commands.models", "models_list"),
    "ITEMS_HELP": ("pycomp.commands.options", "ITEMS_HELP"),
    "app": ("pycomp.cli", "app"),
}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        module, attribute = _MOVED[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

