"""``pycomp solve``: scores from a file of comparisons."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pycomp.commands import options as opts


def solve_command(
    comparisons: Path = typer.Argument(..., help="Comparisons file: .csv, .tsv, .jsonl or .parquet, one row per comparison."),
    out: Path = typer.Option(..., "--out", "-o", help="Scores file to write (.csv, .tsv, .jsonl or .parquet): columns id, score, se (and group with --group)."),
    a: str = typer.Option("a", "--a", help="Column with the first item (an id or an integer index)."),
    b: str = typer.Option("b", "--b", help="Column with the second item."),
    p: Optional[str] = typer.Option(
        None, "--p", help="Column with P(first item wins), in [0, 1]. Default: the column 'p'; a table without one "
        "needs --p COLUMN or --hard.",
    ),
    hard: bool = typer.Option(False, "--hard", help="Hard outcomes: the first item won every comparison (no --p)."),
    weight: Optional[str] = typer.Option(None, "--weight", help="Column with non-negative comparison weights."),
    group: Optional[str] = typer.Option(
        None, "--group",
        help="Column with each comparison's group, for ids unique only within a group: an item is then (group, id). "
             "Default: the column 'group' when the table has one (as `pycomp judge` writes); --group '' ignores it.",
    ),
    model: str = typer.Option("bt", "--model", help="bt (PoE Bradley-Terry) or gaussian (PoE-Gaussian)."),
    method: str = typer.Option("auto", "--method", help="bt: auto, newton, mm, newman; gaussian: auto, cg."),
    alpha: float = typer.Option(1.0, "--alpha", help="Prior strength (bt: virtual games; gaussian: L2). 0 = none, scores centred."),
    beta: float = typer.Option(0.5, "--beta", help="gaussian: expected score difference is p - beta."),
    tol: float = typer.Option(1e-8, "--tol", help="Stop when the gradient's infinity norm is below this."),
    max_iter: Optional[int] = typer.Option(None, "--max-iter", help="Iteration limit (default depends on the method)."),
    se: bool = typer.Option(True, "--se/--no-se", help="Compute standard errors."),
    se_method: str = typer.Option("auto", "--se-method", help="auto, exact, local (Hessian) or sandwich (robust)."),
    bootstrap: Optional[int] = typer.Option(
        None, "--bootstrap", help="Bootstrap replicates B: adds the columns low, high (the --level interval), rank, "
        "rank_best, rank_worst and p_best.",
    ),
    dispersion: str = typer.Option(
        "auto", "--dispersion",
        help="bt: auto or pearson (estimate how noisy the judgements are against a coin flip, phi, and count each as "
             "1/phi games: the prior weighs alpha * phi, standard errors scale by sqrt(phi); auto skips it when the "
             "pairs leave no residual degrees of freedom), none (the plain fit) or a number (phi).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    level: float = typer.Option(0.9, "--level", help="Coverage of the intervals, in (0, 1)."),
    cluster: Optional[str] = typer.Option(
        None, "--cluster", help="Column whose values group comparisons (a user, a prompt): the bootstrap draws "
        "whole groups, the sandwich is cluster-robust.",
    ),
    show_leaderboard: bool = typer.Option(
        False, "--leaderboard", help="Print the leaderboard (rank, score, interval, rank interval) to the terminal.",
    ),
) -> None:
    """Fit scores to pairwise comparisons and write one row per item (id, score, se).

    Items may be named by any ids (strings or integers); they are sorted and the
    output keeps the ids. The probability that the first item won is read from
    the column 'p', or the column given by --p; with --hard, the first item won
    every comparison. Errors name rows counted from 1 over the data rows (row 1
    is the first comparison; a header line is not counted). Example:

        pycomp solve judgements.csv --a item_a --b item_b --p prob --out scores.csv
    """
    opts.wait_passively()
    import numpy as np

    from pycomp.ids import solve_table
    from pycomp.io import read_table, write_table

    try:
        if hard and p is not None:
            raise ValueError(f"--hard and --p {p} contradict each other: give --p COLUMN for probabilities, "
                             f"or --hard if the first item won every comparison")
        _check_out(out)
        frame = read_table(comparisons)
        if frame.empty:
            raise ValueError(f"{comparisons} has no rows: there is nothing to solve")
        group_column = _group_column(frame, group)
        from pycomp.dispersion import parse_option

        extra = _uncertainty_options(frame, bootstrap, seed, level, cluster, se_method)
        extra["dispersion"] = parse_option(dispersion, model)
        table = solve_table(
            frame, a=a, b=b, p=_probability_column(frame, p, hard), weight=weight, group=group_column, model=model,
            method=method, alpha=alpha, beta=beta, tol=tol, max_iter=max_iter, return_se=se, **extra,
        )
        sol = table.attrs.pop("solution")  # not a column: parquet would try to store it
        board = _add_uncertainty_columns(table, sol, level) if bootstrap is not None else None
        write_table(table, out)
    except (ValueError, TypeError, OSError, ImportError, RuntimeError) as exc:
        opts.fail(exc)
        return
    order = np.argsort(-table["score"].to_numpy())
    top = ", ".join(f"{_item_name(table, k)} ({table['score'].iloc[k]:.3f})" for k in order[:3])
    keyed = f" (items are (group, id) pairs: column {group_column!r})" if group_column else ""
    typer.echo(f"{len(table)} items from {len(frame)} comparisons{keyed} -> {out}; top: {top}")
    from pycomp.dispersion import describe

    if describe(sol):
        typer.echo(describe(sol))
    if show_leaderboard:
        from pycomp.leaderboard import format_leaderboard, leaderboard

        typer.echo(format_leaderboard(board if board is not None else leaderboard(sol, table["id"], level), level=level))


def _uncertainty_options(frame, bootstrap, seed, level, cluster, se_method) -> dict:
    """The solve's uncertainty options from the command's, checked with the option names."""
    from pycomp.bootstrap import check_level

    try:
        check_level(level)
    except ValueError as exc:
        raise ValueError(f"--level {level}: {exc}") from None
    if bootstrap is not None and bootstrap <= 0:
        raise ValueError(f"--bootstrap {bootstrap} is not allowed: give the number of replicates, >= 1 (e.g. 1000)")
    extra = {"se_method": se_method}
    if bootstrap is not None:
        extra.update(bootstrap=bootstrap, seed=seed)
    if cluster is not None:
        if cluster not in frame.columns:
            raise ValueError(f"column {cluster!r} (--cluster) is not in the table; columns are {list(frame.columns)}")
        if bootstrap is None and se_method != "sandwich":
            raise ValueError("--cluster needs --bootstrap B or --se-method sandwich")
        extra["cluster"] = frame[cluster].astype(str).to_numpy()
    return extra


def _add_uncertainty_columns(table, sol, level: float):
    """Adds rank, low, high, rank_best, rank_worst, p_best (in the table's item order); returns the leaderboard."""
    from pycomp.leaderboard import leaderboard

    low, high = sol.interval(level)
    best, worst = sol.rank_interval(level)
    table["low"], table["high"] = low, high
    table["rank"], table["rank_best"], table["rank_worst"] = sol.ranks, best, worst
    table["p_best"] = sol.p_best
    return leaderboard(sol, table["id"].to_numpy(), level)


def _item_name(table, k: int) -> str:
    """Row ``k`` of the scores as the user names the item: its id, and its group when there is one."""
    group = table["group"].iloc[k] if "group" in table.columns else ""
    return f"{table['id'].iloc[k]}" + (f" (group {group})" if group != "" else "")


def _group_column(frame, group: Optional[str]) -> Optional[str]:
    """The group column: the one given, else a 'group' column with any value; '' means none."""
    if group is None:
        if "group" not in frame.columns:
            return None
        values = frame["group"].dropna().astype(str).str.strip()
        return "group" if (values != "").any() else None
    if group == "":
        return None
    if group not in frame.columns:
        raise ValueError(f"column {group!r} (--group) is not in the table; columns are {list(frame.columns)}")
    return group


def _check_out(out: Path) -> None:
    from pycomp.io import check_output

    try:
        check_output(out)
    except ValueError as exc:
        raise ValueError(f"--out {exc}") from None


def _probability_column(frame, p: Optional[str], hard: bool) -> Optional[str]:
    """The column of P(first item wins), or None for hard outcomes; never a guess."""
    columns = list(frame.columns)
    if hard:
        return None
    column = "p" if p is None else p
    if column in frame.columns:
        return column
    if p is None:
        raise ValueError(
            f"the table has no column 'p' for P(first item wins); columns are {columns}. Choose: --p COLUMN "
            f"if a column holds that probability, or --hard if the first item won every comparison"
        )
    raise ValueError(f"column {p!r} (--p) is not in the table; columns are {columns}")
