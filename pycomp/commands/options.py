"""The options several commands share, each declared once, and the helpers the commands share.

A command declares its own parameters and collects the shared options in
``**options``; :func:`takes` lists its options in the order ``--help`` shows
them, a shared one by its name in :data:`SHARED`. The names are RankConfig's
field names where the option sets one, so :func:`rank_config` builds the run's
settings from ``options`` directly. A new shared option is one entry in
:data:`SHARED` (and a RankConfig field when the run records it).
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

import typer

__all__ = ["SHARED", "ITEM_FIELDS", "JUDGE_MODEL", "PAIR_PLAN", "takes", "rank_config", "per_item_or_default",
           "given", "set_threads", "wait_passively", "fail", "ERRORS", "ITEMS_HELP"]

# The errors a command reports as one red line and exit code 2 (anything else is a bug: a traceback).
# OSError: a file or folder that cannot be read or written (FileNotFoundError, PermissionError, ...).
ERRORS = (ValueError, OSError, ImportError, RuntimeError, KeyError)

ITEMS_HELP = ("Items: a .jsonl, .csv, .tsv or .parquet file with one row per item, "
              "or example:NAME for a built-in example set (example:reviews).")


@dataclass(frozen=True)
class Shared:
    """One shared option: its type annotation, and the default, flags and help ``typer.Option`` takes."""

    annotation: Any
    default: Any
    flags: Tuple[str, ...]
    help: str

    def parameter(self, name: str) -> inspect.Parameter:
        """The keyword parameter ``name`` that declares this option to typer."""
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=self.annotation,
                                 default=typer.Option(self.default, *self.flags, help=self.help))


SHARED = {
    "text_field": Shared(str, "text", ("--text-field",), "Field holding each item's text."),
    "attribute": Shared(str, "better", ("--attribute",), "Completes 'Which {noun} is ...': e.g. 'more coherent'."),
    "noun": Shared(str, "text", ("--noun",), "What an item is: 'summary', 'answer', ..."),
    "context_field": Shared(Optional[str], None, ("--context-field",),
                            "Field with a shared context (e.g. the article); pairs never cross contexts."),
    "context_noun": Shared(str, "Context", ("--context-noun",),
                           "How the context is introduced in the prompt, e.g. 'Article'."),
    "group_field": Shared(Optional[str], None, ("--group-field",), "Only compare items within the same group."),
    "id_field": Shared(Optional[str], None, ("--id-field",),
                       "Field with item ids, unique within each group (default: row numbers from 0)."),
    "model": Shared(Optional[str], None, ("--model", "-m"),
                    "smollm2-135m (default), a .gguf file, a model folder or a Hugging Face id."),
    "adapter": Shared(Optional[str], None, ("--adapter",), "A LoRA adapter folder (peft) applied to the model."),
    "device": Shared(str, "auto", ("--device",), "auto, cpu, cuda or cuda:N."),
    "dtype": Shared(str, "auto", ("--dtype",),
                    "auto (float32 on CPU, bfloat16 on CUDA), float32, bfloat16, float16 (CUDA)."),
    "quantization": Shared(str, "none", ("--quantization",), "none or 4bit (bitsandbytes NF4, CUDA only)."),
    "template": Shared(Optional[str], None, ("--template",),
                       "Prompt template file (Jinja or format string) with {item_a} and {item_b}."),
    "system": Shared(Optional[str], None, ("--system",), "System message (default: the model's own)."),
    "labels": Shared(str, "A,B", ("--labels",), "The two answer labels, comma-separated."),
    "per_item": Shared(Optional[float], None, ("--per-item", "-k"), "Comparisons per item (default 4)."),
    "all_pairs": Shared(bool, False, ("--all-pairs",), "Use every pair (within groups) instead of --per-item."),
    "design": Shared(str, "random", ("--design",), "random (balanced, k per item) or greedy (information-greedy)."),
    "seed": Shared(int, 0, ("--seed",), "Seed of the random design and subsamples."),
    "batch_size": Shared(int, 16, ("--batch-size", "-b"), "Prompts per forward pass."),
    "threads": Shared(Optional[int], None, ("--threads",), "CPU threads for torch (default: torch's choice)."),
    "fit_on": Shared(Optional[str], None, ("--fit-on",),
                     "Items the affine map onto the gold scale is fitted on: FIELD=VALUE (e.g. split=train) or a "
                     "fraction (0.5); RMSE is reported on the rest."),
    "progress": Shared(bool, True, ("--progress/--no-progress",), "Show a progress bar."),
}

# Runs of shared options that commands take together, in --help order.
ITEM_FIELDS = ("text_field", "attribute", "noun", "context_field", "context_noun", "group_field", "id_field")
JUDGE_MODEL = ("model", "adapter", "device", "dtype", "quantization", "template", "system", "labels")
PAIR_PLAN = ("per_item", "all_pairs", "design", "seed")


def takes(*names: str) -> Callable:
    """Decorator: a command's options in ``--help`` order, each its own parameter or a shared one.

    The command declares its own parameters (typer style) and ``**options``,
    which receives the shared options named in ``names``.

    Raises
    ------
    TypeError
        At import: an own parameter missing from ``names``, or a name that is
        neither an own parameter nor in :data:`SHARED`.
    """
    def decorate(command: Callable) -> Callable:
        own = {name: p for name, p in inspect.signature(command, eval_str=True).parameters.items()
               if p.kind is not inspect.Parameter.VAR_KEYWORD}
        unknown = [name for name in names if name not in own and name not in SHARED]
        unplaced = [name for name in own if name not in names]
        if unknown or unplaced:
            raise TypeError(f"{command.__name__}: unknown options {unknown}, options not placed {unplaced}")
        params = [own[name].replace(kind=inspect.Parameter.KEYWORD_ONLY) if name in own
                  else SHARED[name].parameter(name) for name in names]
        command.__signature__ = inspect.Signature(params)
        return command

    return decorate


def per_item_or_default(per_item: Optional[float], all_pairs: bool, default: float = 4) -> float:
    """``--per-item``, or ``default`` when it is not given; refused together with ``--all-pairs``."""
    if all_pairs and per_item is not None:
        raise ValueError("give either --per-item K or --all-pairs, not both")
    return default if per_item is None else per_item


def _labels(value: str) -> Tuple[str, str]:
    parts = [x.strip() for x in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"--labels {value!r} must be two labels separated by a comma, e.g. A,B")
    return tuple(parts)


def rank_config(options: dict, **fields):
    """The run's settings (a RankConfig) from a command's shared ``options`` and its own ``fields``.

    Raises
    ------
    ValueError
        ``--per-item`` with ``--all-pairs``, labels that are not two, an unknown design.
    """
    from pycomp.config import RankConfig

    values = {**options, **fields}
    per_item = per_item_or_default(values.pop("per_item"), values["all_pairs"])
    values["labels"] = _labels(values["labels"])
    if values["design"] not in ("random", "greedy"):
        raise ValueError(f"--design {values['design']!r} is not one of: random, greedy (or use --all-pairs)")
    return RankConfig(per_item=per_item, **values)


def given(ctx: typer.Context) -> set:
    """Names of the options the user gave (on the command line or through the environment)."""
    # Compared by name: typer vendors its own click, whose ParameterSource is not click's.
    return {name for name in ctx.params
            if getattr(ctx.get_parameter_source(name), "name", None) not in (None, "DEFAULT", "DEFAULT_MAP")}


def wait_passively() -> None:
    """Let OpenMP threads sleep rather than spin while they wait, unless the user chose.

    Spinning makes a 2-thread judge 4-5x slower than 1 thread on a shared or busy
    CPU, and a 10k-item solve 20x slower in some runs; passive waiting costs little on an
    idle one. Every command calls this first, before torch or pycomp's compiled core
    (which load the OpenMP runtime, which reads the variable once) are loaded: the
    setting is for the command's own process, which a command owns.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def set_threads(threads: Optional[int]) -> None:
    """``torch.set_num_threads(threads)``; nothing when ``threads`` is None."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads {threads} must be >= 1")
        import torch

        torch.set_num_threads(threads)


def fail(exc: BaseException) -> None:
    """Report ``exc`` as ``error: ...`` on stderr and exit with code 2."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)
