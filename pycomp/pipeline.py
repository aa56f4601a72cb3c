"""The end-to-end ranking pipeline: items -> plan -> judge -> solve -> evaluate -> report.

:func:`rank` is what ``pycomp rank`` runs; it only sequences the stages
(:mod:`pycomp.items`, :mod:`pycomp.plan_stage`, :mod:`pycomp.judge_stage`,
:mod:`pycomp.solve_stage`, :mod:`pycomp.evaluate`, :mod:`pycomp.report`).
Each stage writes a plain file in the output folder, so any stage can be rerun
or inspected alone:

``items.jsonl``        the items as read (id, group, text, gold)
``pairs.csv``          the planned pairs: a, b, group, i, j (ids, their group, indices); --design active:
                       the pairs in the order judged, with the round each was chosen in (round)
``judgements.jsonl``   raw both-order judgements, appended as they finish (resumable)
``comparisons.jsonl``  one row per pair: a, b, group, p (combined), p_ab, p_ba, ...
``scores.csv``         id, group, score, se (--bootstrap: low, high, rank, rank_best, rank_worst, p_best)
``metrics.json``       when gold scores are given
``predicted_vs_gold.png``, ``spearman_vs_comparisons.png``
``run.json``           every setting, versions, timings and the judge's bias report

With groups an item is named by (group, id), so ids need only be unique within
their group; every file above names items by both.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Collection, Optional

import numpy as np

from pycomp import report
from pycomp.config import PathLike, RankConfig
from pycomp.evaluate import evaluate_run
from pycomp.items import load_items
from pycomp.judge_stage import judge_items, load_judge, template_for
from pycomp.plan_stage import comparisons_per_item, plan_for
from pycomp.report import write_json
from pycomp.solve_stage import solve_scores

# Names this module held before each stage had a module of its own: old imports
# (``from pycomp.pipeline import ItemsError``) keep working.
from pycomp.evaluate import evaluate_scores, parse_fit_on, spearman_curve, subsample_per_item  # noqa: F401,E402
from pycomp.items import (  # noqa: F401,E402
    Items, ItemsError, find_items, pairs_from_table, scores_from_table, validate_items,
)
from pycomp.report import versions  # noqa: F401,E402

__all__ = ["rank"]


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
        them (see :func:`pycomp.items.load_items`).

    Returns
    -------
    dict
        The content of run.json (with ``metrics`` when gold scores were given).
    """
    from pycomp.io import write_table
    from pycomp.judge.run import reuse_phrase, summary_line, summary_warnings
    from pycomp.separation import adjacent_separation

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    if config.bootstrap is not None:  # before judging, not after it
        from pycomp.bootstrap import check_replicates
        check_replicates(config.bootstrap, "--bootstrap")
    items, config = load_items(source, config, given=given)
    template = template_for(items, config)
    if config.calibrate and items.gold is None:
        raise ValueError("--calibrate fits the judge to gold scores: give --gold-field")
    active = config.design_name() == "active"  # pairs chosen between rounds of judging (pycomp/active_stage.py)
    pairs = None if active else plan_for(items, config)
    if active:
        from pycomp import active_stage
        active_stage.announce(items, config, echo)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_table(report.items_table(items), out_dir / "items.jsonl")
    if not active:
        write_table(report.pairs_table(items, pairs), out_dir / "pairs.csv")
        echo(f"{len(items)} items, {len(pairs)} pairs ({config.design_name()} design, "
             f"{comparisons_per_item(pairs, len(items)):.1f} comparisons per item), {2 * len(pairs)} prompts (both "
             f"orders)")

    t_load = time.perf_counter()
    if backend is None:
        echo(f"loading judge {config.model or 'smollm2-135m'} ...")
        backend = load_judge(config, progress=echo)
    load_seconds = time.perf_counter() - t_load

    if active:
        judged, pairs, active_info = active_stage.judge_active(backend, template, items, config,
                                                               out_dir / "judgements.jsonl", echo)
        write_table(active_stage.pairs_with_rounds(items, pairs, active_info), out_dir / "pairs.csv")
        del active_info["round_of_pair"]
    else:
        judged = judge_items(backend, template, items, pairs, config, out_dir / "judgements.jsonl")
    comparisons = report.with_group_column(judged.comparisons, items)
    calibration = None
    if config.calibrate:
        from pycomp.calibration import calibrate_comparisons
        from pycomp.evaluate import parse_fit_on
        comparisons, calibration = calibrate_comparisons(comparisons, items.gold,
                                                         parse_fit_on(config.fit_on, items, config.seed)[0])
        echo(calibration.line())
    write_table(comparisons, out_dir / "comparisons.jsonl")
    js = judged.summary
    rate = f"{js['judgements_per_second']:.1f} prompts/s, " if js.get("judgements_per_second") else ""
    echo(f"judged {js['n_judged']} prompts in {js['seconds']:.1f} s ({rate}{reuse_phrase(js)})")
    echo(summary_line(js))
    for warning in summary_warnings(js):
        echo(f"warning: {warning}")

    t_solve = time.perf_counter()
    sol = solve_scores(len(items), comparisons, config.solver, config.alpha, return_se=True,
                       bootstrap=config.bootstrap, seed=config.seed, dispersion=config.dispersion)
    solve_seconds = time.perf_counter() - t_solve
    if sol.dispersion is not None:
        from pycomp.dispersion import describe

        echo(describe(sol))
    se = sol.se if sol.se is not None else np.full(len(items), np.nan)
    write_table(report.scores_table(items, sol.scores, se, sol), out_dir / "scores.csv")
    separation, verdict = adjacent_separation(sol.scores, se, items.groups)
    echo(verdict)

    timings = {"load_seconds": round(load_seconds, 3), "judge_seconds": js["seconds"],
               "solve_seconds": round(solve_seconds, 4)}
    run = report.run_record(source, out_dir, config, items, pairs, backend=backend, template=template,
                            judge_summary=js, solution=sol, separation=separation, timings=timings)
    if active:
        run["active"] = active_info
    if calibration is not None:
        run["calibration"] = calibration.as_dict()
    if sol.n_components > 1:
        how = "per group" if items.groups is not None else "with the prior (alpha) tying components"
        echo(f"note: the comparison graph has {sol.n_components} connected components; scores are comparable "
             f"only within a component ({how})")

    if items.gold is not None:
        mets, curve = evaluate_run(items, sol.scores, comparisons, config, js, separation)
        if calibration is not None:
            mets["calibration"] = calibration.as_dict()
        report.write_metrics(out_dir, run, mets, curve, items, sol.scores, se, config)
    run["timings"]["total_seconds"] = round(time.perf_counter() - t_start, 3)
    write_json(run, out_dir / "run.json")
    return run
