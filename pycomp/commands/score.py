"""``pycomp score``: pointwise scores, the expected score over the score tokens, per item.

The scoring itself is :func:`pycomp.judge.pointwise.score_items`; this module
reads the items, loads the judge with the score labels as its answer labels,
writes the output folder and evaluates against gold as ``pycomp rank`` does.
torch and transformers are imported inside the command, so ``--help`` is fast.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Collection, Optional

import typer

from pycomp.commands import options as opts

__all__ = ["score_command", "score_run", "adapter_scale"]

SCORE_FILES = {"items": "items.jsonl", "judgements": "judgements.jsonl", "scores": "scores.csv"}
# The shared judge options that make no sense here: the pointwise prompt is fixed and its labels are --scale.
_NOT_HERE = ("template", "labels")


def adapter_scale(adapter: Optional[str]) -> Optional[str]:
    """``"LO-HI"`` of an adapter trained by ``pycomp train --objective rail`` (its pycomp-train.json), else None."""
    if not adapter:
        return None
    path = Path(adapter) / "pycomp-train.json"
    if not path.is_file():
        return None
    try:
        settings = json.loads(path.read_text()).get("settings") or {}
    except ValueError:
        return None
    if settings.get("objective") != "rail":
        return None
    return f"{int(settings.get('score_min', 1))}-{int(settings.get('score_max', 5))}"


def score_run(source: str, config, out_dir, *, scale: Optional[str] = None, normalize: str = "scores", backend=None,
              echo: Callable[[str], None] = print, given: Optional[Collection[str]] = None) -> dict:
    """Score the items of ``source`` and write the output folder.

    Parameters
    ----------
    source : str
        Items file or ``example:NAME``.
    config : pycomp.config.RankConfig
        Item fields, judge model, cache, batch size, gold field, ``fit_on``, plots.
    out_dir : path
        Output folder: items.jsonl, judgements.jsonl (resumable), scores.csv,
        metrics.json and predicted_vs_gold.png (with gold), run.json.
    scale : str, optional
        ``--scale`` (default: the adapter's rail scale, else 1-5).
    normalize : {"scores", "vocab"}
    backend : JudgeBackend, optional
        An already loaded judge whose labels are the scale's.
    echo : callable
    given : collection of str, optional
        The ``config`` fields the user set.

    Returns
    -------
    dict
        The content of run.json.
    """
    from pycomp import report
    from pycomp.evaluate import evaluate_scores
    from pycomp.io import write_table
    from pycomp.items import load_items
    from pycomp.judge.cache import open_cache
    from pycomp.judge.pointwise import (
        NORMALIZE, parse_scale, point_fingerprint, score_items, score_warnings,
    )
    from pycomp.judge.run import PromptSettings, reuse_phrase
    from pycomp.judge_stage import load_judge

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    if normalize not in NORMALIZE:
        raise ValueError(f"--normalize {normalize!r} is not one of: {', '.join(NORMALIZE)}")
    if scale is None:
        scale = adapter_scale(config.adapter) or "1-5"
    labels, values = parse_scale(scale)
    config.labels = labels
    items, config = load_items(source, config, given=given)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(report.items_table(items), out_dir / SCORE_FILES["items"])
    echo(f"{len(items)} items, scale {','.join(labels)} (expected score over the score tokens)")

    t_load = time.perf_counter()
    if backend is None:
        echo(f"loading judge {config.model or 'smollm2-135m'} ...")
        backend = load_judge(config, progress=echo)
    elif tuple(backend.labels) != tuple(labels):
        raise ValueError(f"the judge's labels {tuple(backend.labels)} are not the scale's {labels}")
    load_seconds = time.perf_counter() - t_load

    settings = PromptSettings(attribute=config.attribute, noun=config.noun, context_noun=config.context_noun)
    cache = open_cache(config.cache, config.cache_dir)
    try:
        result = score_items(backend, items.texts, out=out_dir / SCORE_FILES["judgements"], values=values,
                             ids=items.ids, groups=items.groups, contexts=items.contexts, settings=settings,
                             system=config.system, normalize=normalize, batch_size=config.batch_size,
                             progress=config.progress, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    table = result.table
    if "group" not in table.columns:
        table.insert(1, "group", report.group_column(items))
    write_table(table, out_dir / SCORE_FILES["scores"])
    js = result.summary
    rate = f"{js['judgements_per_second']:.1f} items/s, " if js.get("judgements_per_second") else ""
    echo(f"scored {js['n_judged']} items in {js['seconds']:.1f} s ({rate}{reuse_phrase(js)})")
    echo(f"judge: score-label mass {js['answer_mass_mean']:.2f} (mean probability on the score labels; 1 = always "
         f"answers with a score)")
    for warning in score_warnings(js):
        echo(f"warning: {warning}")

    run = {
        "command": "score",
        "items": str(source),
        "out": str(out_dir),
        "config": asdict(config),
        "scale": {"labels": list(labels), "values": values.tolist(), "normalize": normalize},
        "n_items": len(items),
        "judge": {"backend": backend.describe(), "template": point_fingerprint(labels, config.system),
                  "summary": js},
        "versions": report.versions(),
        "timings": {"load_seconds": round(load_seconds, 3), "judge_seconds": js["seconds"]},
        "files": dict(SCORE_FILES),
    }
    if items.gold is not None:
        scores = table["score"].to_numpy(dtype=float)
        mets = evaluate_scores(items, scores, fit_on=config.fit_on, seed=config.seed)
        mets["judge"] = {"answer_mass_mean": js["answer_mass_mean"]}
        report.write_json(mets, out_dir / "metrics.json")
        run["files"]["metrics"] = "metrics.json"
        run["metrics"] = {k: v for k, v in mets.items() if k != "spearman_per_group"}
        if config.plots:
            report.plot_predicted_vs_gold(out_dir / "predicted_vs_gold.png", scores, items, mets,
                                          se=table["sd"].to_numpy(dtype=float), gold_field=config.gold_field,
                                          title=f"{config.attribute}: Spearman {mets['spearman']:.3f} (pointwise)")
            run["files"]["plot_scatter"] = "predicted_vs_gold.png"
    run["timings"]["total_seconds"] = round(time.perf_counter() - t_start, 3)
    report.write_json(run, out_dir / "run.json")
    return run


def _judge_options():
    return tuple(name for name in opts.JUDGE_MODEL if name not in _NOT_HERE)


@opts.takes("ctx", "items", "out", *opts.ITEM_FIELDS, "gold_field", *_judge_options(), "scale", "normalize",
            "batch_size", "threads", "fit_on", "plots", "seed", "progress")
def score_command(
    ctx: typer.Context,
    items: str = typer.Argument(..., help=opts.ITEMS_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created; rerunning resumes the scoring)."),
    gold_field: Optional[str] = typer.Option(None, "--gold-field", help="Field with gold scores: enables metrics.json and the plot."),
    scale: Optional[str] = typer.Option(None, "--scale", help="Score labels, comma-separated (1,2,3,4,5) or a range (1-5); each must be one token. Default: the rail adapter's scale, else 1-5."),
    normalize: str = typer.Option("scores", "--normalize", help="scores: probabilities renormalised over the score labels; vocab: as they are over the vocabulary (TRACT)."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write predicted_vs_gold.png when gold is given."),
    **options,
) -> None:
    """Score each item alone: the expected score over the score tokens (RAIL/TRACT).

    The prompt is the one `pycomp train --objective rail` trains, so its
    adapters plug in with --adapter:

    pycomp score example:reviews --out runs/reviews-score

    pycomp score summeval.jsonl --text-field summary --context-field article
    --context-noun Article --group-field article_id --id-field summary_id
    --gold-field coherence --noun summary --attribute "more coherent"
    --out runs/coh-score

    scores.csv holds id, group, score (the expected score), sd, mass (the
    probability on the score labels) and p_LABEL (the distribution); with
    --gold-field, metrics.json as for `pycomp rank`. Rerunning resumes;
    prompts any earlier run judged with the same model come from the
    judgement cache.
    """
    opts.wait_passively()
    from pycomp.commands.rank import _metrics_lines
    from pycomp.config import RankConfig

    threads = options.pop("threads")
    try:
        config = RankConfig(gold_field=gold_field, plots=plots, **options)
        opts.set_threads(threads)
        run = score_run(items, config, out, scale=scale, normalize=normalize, echo=typer.echo,
                        given=opts.given(ctx))
    except opts.ERRORS as exc:
        opts.fail(exc)
        return
    mets = run.get("metrics")
    if mets:
        for line in _metrics_lines(mets, run["config"]["gold_field"]):
            typer.echo(line)
    typer.echo(f"scores: {out / run['files']['scores']}")
    if "metrics" in run["files"]:
        typer.echo(f"metrics: {out / run['files']['metrics']}")
    if "plot_scatter" in run["files"]:
        typer.echo(f"plot: {out / run['files']['plot_scatter']}")
    typer.echo(f"run settings: {out / 'run.json'} ({run['timings']['total_seconds']:.0f} s in all)")
