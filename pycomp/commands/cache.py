"""``pycomp cache``: what the judgement cache holds, and clearing it (all of it or one model's)."""
from __future__ import annotations

import json
from typing import Optional

import typer

from pycomp.commands import options as opts

__all__ = ["app", "cache_info", "cache_clear"]

app = typer.Typer(help="The judgement cache shared by every run: what it holds, clearing it.", no_args_is_help=True)

_DIR_HELP = "Judgement cache folder (default: $PYCOMP_CACHE_DIR, else ~/.cache/pycomp/judgements)."


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n} B"  # pragma: no cover


@app.command("info")
def cache_info(
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help=_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Entries, size on disk, and the entries of each backend fingerprint (model, adapter, labels)."""
    from pycomp.judge.cache import JudgementCache

    try:
        with JudgementCache(cache_dir) as cache:
            info = cache.info()
    except opts.ERRORS as exc:
        opts.fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(info, indent=1, sort_keys=True))
        return
    typer.echo(f"cache: {info['path']}" + ("" if info["exists"] else " (empty: nothing judged with it yet)"))
    typer.echo(f"entries: {info['entries']}, size: {_size(info['size_bytes'])}")
    for fp in info["fingerprints"]:
        adapter = f", adapter {fp['adapter'][:12]}" if fp["adapter"] else ""
        dtype = fp["fingerprint"].get("dtype")
        typer.echo(f"  {fp['key']}  {fp['entries']:>9d} entries  {fp['backend']} {fp['model']}{adapter}"
                   + (f", {dtype}" if dtype else "") + f", labels {fp['labels']}"
                   + (f", last written {fp['last_written']}" if fp["last_written"] else ""))


@app.command("clear")
def cache_clear(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Only this model's entries: its name as `pycomp cache info` lists it (with or without @hash), or a fingerprint key."),
    cache_dir: Optional[str] = typer.Option(None, "--cache-dir", help=_DIR_HELP),
) -> None:
    """Delete the cached judgements: all of them, or one model's (--model)."""
    from pycomp.judge.cache import JudgementCache

    try:
        with JudgementCache(cache_dir) as cache:
            deleted = cache.clear(model)
            left = cache.info()["entries"] if cache.path.exists() else 0
    except opts.ERRORS as exc:
        opts.fail(exc)
        return
    which = f" of model {model}" if model else ""
    typer.echo(f"deleted {deleted} cached judgements{which} ({left} left) in {cache.path}")
