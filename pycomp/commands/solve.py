"""``pycomp solve``: scores from a file of comparisons."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pycomp.cli_app import app


@app.command("solve")
def solve_command(
    comparisons: Path = typer.Argument(..., help="Comparisons file: .csv, .tsv, .jsonl or .parquet, one row per comparison."),
    out: Path = typer.Option(..., "--out", "-o", help="Scores file to write (.csv, .jsonl or .parquet): columns id, score, se."),
    a: str = typer.Option("a", "--a", help="Column with the first item (an id or an integer index)."),
    b: str = typer.Option("b", "--b", help="Column with the second item."),
    p: str = typer.Option("p", "--p", help="Column with P(first item wins); if the column is absent, the first item won."),
    weight: Optional[str] = typer.Option(None, "--weight", help="Column with non-negative comparison weights."),
    model: str = typer.Option("bt", "--model", help="bt (PoE Bradley-Terry) or gaussian (PoE-Gaussian)."),
    method: str = typer.Option("auto", "--method", help="bt: auto, newton, mm, newman; gaussian: auto, cg."),
    alpha: float = typer.Option(1.0, "--alpha", help="Prior strength (bt: virtual games; gaussian: L2). 0 = none, scores centred."),
    beta: float = typer.Option(0.5, "--beta", help="gaussian: expected score difference is p - beta."),
    tol: float = typer.Option(1e-8, "--tol", help="Stop when the gradient's infinity norm is below this."),
    max_iter: Optional[int] = typer.Option(None, "--max-iter", help="Iteration limit (default depends on the method)."),
    se: bool = typer.Option(True, "--se/--no-se", help="Compute standard errors."),
) -> None:
    """Fit scores to pairwise comparisons and write one row per item (id, score, se).

    Items may be named by any ids (strings or integers); they are sorted and the
    output keeps the ids. Example:

        pycomp solve judgements.csv --a item_a --b item_b --p p --out scores.csv
    """
    import numpy as np

    from pycomp.ids import solve_table
    from pycomp.io import read_table, write_table

    try:
        frame = read_table(comparisons)
        if frame.empty:
            raise ValueError(f"{comparisons} has no rows: there is nothing to solve")
        table = solve_table(
            frame, a=a, b=b, p=p, weight=weight, model=model, method=method, alpha=alpha, beta=beta, tol=tol,
            max_iter=max_iter, return_se=se,
        )
    except (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    write_table(table, out)
    order = np.argsort(-table["score"].to_numpy())
    top = ", ".join(f"{table['id'].iloc[k]} ({table['score'].iloc[k]:.3f})" for k in order[:3])
    typer.echo(f"{len(table)} items from {len(frame)} comparisons -> {out}; top: {top}")
