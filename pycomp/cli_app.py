"""The ``pycomp`` typer application that every command module registers on."""
import typer

app = typer.Typer(
    name="pycomp",
    help=(
        "LLM comparative assessment: plan pairs, judge them with an LLM, "
        "solve for scores with product-of-experts Bradley-Terry, evaluate, fine-tune."
    ),
    no_args_is_help=True,
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
