"""``pycomp judge``: the judge stage alone, items to one combined comparison per pair.

It runs the same stage functions as ``pycomp rank`` (items, plan, judge).
torch and transformers are imported inside the command, so ``--help`` is fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pycomp.commands import options as opts


@opts.takes("ctx", "items", "out", "judgements", "pairs_file", *opts.ITEM_FIELDS, *opts.JUDGE_MODEL, *opts.PAIR_PLAN,
            "batch_size", "threads", "progress")
def judge_command(
    ctx: typer.Context,
    items: str = typer.Argument(..., help=opts.ITEMS_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Comparisons file to write (.jsonl/.csv/.parquet): a, b, p, p_ab, p_ba, ..."),
    judgements: Optional[Path] = typer.Option(None, "--judgements", help="Resumable raw judgements file (default: OUT with .judgements.jsonl)."),
    pairs_file: Optional[Path] = typer.Option(None, "--pairs", help="Judge these pairs (a table with columns a, b holding item ids, and group when ids repeat across groups) instead of planning."),
    **options,
) -> None:
    """Judge pairs in both orders and write one combined comparison per pair (the judge stage alone).

    The output feeds ``pycomp solve OUT --out scores.csv`` directly (columns a, b, p).
    Options as for ``pycomp rank``.
    """
    opts.wait_passively()
    from pycomp.io import check_output, read_table, write_table
    from pycomp.items import load_items, pairs_from_table
    from pycomp.judge.run import summary_line, summary_warnings
    from pycomp.judge_stage import judge_items, load_judge, template_for
    from pycomp.plan_stage import plan_for

    threads = options.pop("threads")
    try:
        check_output(out)
        config = opts.rank_config(options)
        opts.set_threads(threads)
        loaded, config = load_items(items, config, given=opts.given(ctx))
        template = template_for(loaded, config)
        if pairs_file is not None:
            pairs = pairs_from_table(read_table(pairs_file), loaded, str(pairs_file))
        else:
            pairs = plan_for(loaded, config)
        backend = load_judge(config, progress=typer.echo)
        log = judgements if judgements is not None else out.with_name(out.stem + ".judgements.jsonl")
        result = judge_items(backend, template, loaded, pairs, config, log)
        write_table(result.comparisons, out)
    except opts.ERRORS as exc:
        opts.fail(exc)
        return
    js = result.summary
    typer.echo(f"{len(pairs)} pairs ({js['n_judged']} prompts judged now, {js['n_reused']} reused) -> {out}")
    typer.echo(summary_line(js))
    typer.echo(f"raw judgements: {log}")
    for warning in summary_warnings(js):
        typer.echo(f"warning: {warning}")
