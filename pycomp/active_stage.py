"""The active design in a ranking run: rounds of judge -> solve -> choose, with the run's judge.

:func:`judge_active` drives :func:`pycomp.active.active_rank` with the run's
judge (:func:`pycomp.judge_stage.judge_items`, both orders, the run's
judgements file), so an active run is resumable like every run: a rerun finds
every judged prompt in ``judgements.jsonl``, solves the same comparisons and
makes the same choices, and judges only what the killed run had not.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np

from pycomp.config import RankConfig
from pycomp.dispersion import parse_option
from pycomp.items import Items

__all__ = ["judge_active", "active_settings", "announce", "pairs_with_rounds"]

_SUMMED = ("n_judged", "n_reused", "n_from_log", "n_from_cache", "seconds")


def active_settings(items: Items, config: RankConfig) -> dict:
    """The settings of the active design for these items: budget, batch, first round size, threshold.

    Raises
    ------
    ValueError
        ``--budget`` missing or not > 0, ``--batch-pairs`` not > 0, a budget smaller
        than one batch or than the first round, ``--stop-threshold`` outside (0, 1).
    """
    from pycomp.active import check_settings, first_round

    n = len(items)
    if config.budget is None:
        raise ValueError("--design active needs --budget B: the most pairs to judge (each in both orders)")
    first_k = max(1, int(round(config.per_item if config.per_item else 2)))
    batch = config.batch_pairs if config.batch_pairs is not None else max(1, n // 2)
    size = len(first_round(n, first_k, groups=items.groups, seed=config.seed))
    check_settings(n, config.budget, batch, size, config.stop_threshold, first_k)
    return {"budget": int(config.budget), "batch_pairs": int(batch), "first_k": first_k, "first_round_pairs": size,
            "stop_threshold": config.stop_threshold}


def judge_active(backend, template, items: Items, config: RankConfig, log: Path,
                 echo: Callable[[str], None] = print) -> Tuple[object, np.ndarray, dict]:
    """Run the active design's rounds with the run's judge.

    The first round is a random design with ``--per-item`` pairs per item (2 when
    the option is not given; ``pycomp rank``'s default of 4 applies to the other
    designs only when the user gave it).

    Returns
    -------
    judged : pycomp.judge.run.JudgeResult
        Every judged pair, as for a planned design; its summary adds up the rounds.
    pairs : numpy.ndarray of int64, shape (m, 2)
        The pairs in the order judged.
    info : dict
        For run.json: the settings, ``rounds`` (one record per round, see
        :class:`pycomp.active.ActiveResult`), ``stop_reason``, ``round_of_pair``.
    """
    from pycomp.active import active_rank
    from pycomp.judge_stage import judge_items

    settings = active_settings(items, config)
    summaries: List[dict] = []

    def judge(pairs: np.ndarray) -> np.ndarray:
        result = judge_items(backend, template, items, pairs, config, log)
        summaries.append(result.summary)
        return result.comparisons["p"].to_numpy(np.float64)

    def report(rec: dict, solution) -> None:
        echo(f"round {rec['round']}: {rec['n_pairs']} pairs ({rec['n_pairs_total']} of the budget of "
             f"{settings['budget']}), expected 1 - Spearman with the truth {rec['expected_spearman_gap']:.3f}, "
             f"{rec['n_separated']} of {rec['n_adjacent']} adjacent pairs told apart")

    result = active_rank(judge, len(items), settings["budget"], batch_pairs=settings["batch_pairs"],
                         groups=items.groups, first_k=settings["first_k"], seed=config.seed,
                         stop_threshold=config.stop_threshold, model=config.solver, alpha=config.alpha,
                         dispersion=parse_option(config.dispersion, config.solver, "--solver"),
                         on_round=report)
    judged = judge_items(backend, template, items, result.pairs, config, log)  # all found in the log now
    summary = dict(judged.summary)
    for key in _SUMMED:
        if any(key in s for s in summaries):
            summary[key] = sum(s.get(key, 0) for s in summaries)
    summary["seconds"] = round(summary.get("seconds", 0.0), 3)
    summary["judgements_per_second"] = (round(summary["n_judged"] / summary["seconds"], 3)
                                        if summary.get("n_judged") and summary["seconds"] > 0 else None)
    judged.summary = summary
    info = {**settings, "rounds": result.rounds, "stop_reason": result.stop_reason,
            "n_pairs": int(len(result.pairs))}
    echo(f"active design: {len(result.pairs)} pairs in {len(result.rounds)} rounds, stopped: "
         f"{_REASONS[result.stop_reason]}")
    return judged, result.pairs, {**info, "round_of_pair": result.round}


_REASONS = {"budget": "the budget is spent",
            "threshold": "the expected 1 - Spearman fell below --stop-threshold",
            "exhausted": "every pair has been judged"}


def announce(items: Items, config: RankConfig, echo: Callable[[str], None] = print) -> dict:
    """Check the active settings before the judge is loaded, and say what the run will do."""
    settings = active_settings(items, config)
    echo(f"{len(items)} items, active design: at most {settings['budget']} pairs ({2 * settings['budget']} prompts, "
         f"both orders): a random first round of {settings['first_round_pairs']} pairs ({settings['first_k']} per "
         f"item), then {settings['batch_pairs']} pairs per round where the ranking is least sure")
    return settings


def pairs_with_rounds(items: Items, pairs: np.ndarray, info: dict):
    """pairs.csv of an active run: the judged pairs in order, with the round each was chosen in."""
    from pycomp import report

    table = report.pairs_table(items, pairs)
    table["round"] = np.asarray(info["round_of_pair"], dtype=np.int64)
    return table
