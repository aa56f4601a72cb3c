"""The ``pycomp`` command line: the typer app with every command, and its entry point.

Each command lives in its own module under :mod:`pycomp.commands`; this module
only registers them. Run as ``pycomp`` (the console script) or ``python -m pycomp.cli``.
"""
import sys

__all__ = ["app", "main"]

HELP = ("LLM comparative assessment: plan pairs, judge them with an LLM, "
        "solve for scores with product-of-experts Bradley-Terry, evaluate, fine-tune.")


def _build_app():
    """The typer app with the commands in the order ``pycomp --help`` lists them."""
    import typer

    from pycomp.commands import cache, evaluate, judge, models, rank, score, solve, train

    app = typer.Typer(name="pycomp", help=HELP, no_args_is_help=True, invoke_without_command=True,
                      add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _main(
        version: bool = typer.Option(False, "--version", help="Print the version and build facts, then exit."),
    ) -> None:
        """LLM comparative assessment: plan, judge, solve, evaluate, train."""
        if version:
            import pycomp

            info = pycomp.build_info()
            typer.echo(
                f"pycomp {info['version']} (openmp={info['openmp']}, threads={info['max_threads']}, "
                f"cuda_compiled={info['cuda_compiled']}, cuda_devices={info['cuda_device_count']})"
            )
            raise typer.Exit()

    app.command("solve")(solve.solve_command)
    app.command("rank")(rank.rank_command)
    app.command("judge")(judge.judge_command)
    app.command("score")(score.score_command)
    app.command("evaluate")(evaluate.evaluate_command)
    app.command("train")(train.train_command)
    app.add_typer(models.app, name="models")
    app.add_typer(cache.app, name="cache")
    return app


# The command line's own dependencies (the `cli` extra); a solver-only install lacks them.
_CLI_DEPENDENCIES = ("typer", "click", "pandas", "scipy")

try:
    app = _build_app()
except ModuleNotFoundError as _exc:
    if (_exc.name or "").split(".")[0] not in _CLI_DEPENDENCIES:
        raise
    app = None
    _MISSING = _exc.name


def _show_pycomp_warnings_plainly() -> None:
    """pycomp's own warnings as ``warning: message`` lines on stderr, like the commands' other warnings."""
    import warnings

    from pycomp import exceptions

    ours = tuple(v for v in vars(exceptions).values() if isinstance(v, type) and issubclass(v, Warning))
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ours):
            (file or sys.stderr).write(f"warning: {message}\n")
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main() -> None:
    """Run the ``pycomp`` command line."""
    if app is None:
        sys.stderr.write(
            f"error: the pycomp command needs {_MISSING}, which is not installed: "
            f"pip install 'pycomp[cli]' (or 'pycomp[llm]' for the judge and the trainer)\n"
        )
        raise SystemExit(2)
    _show_pycomp_warnings_plainly()
    app()


if __name__ == "__main__":
    main()
