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
from typing import Any, Callable, List, Optional, Tuple

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
    "backend": Shared(str, "transformers", ("--backend",),
                      "Judge engine: transformers (in-process), vllm (in-process vLLM engine) or openai (OpenAI-"
                      "compatible servers at --base-url; --model is the served model name)."),
    "base_urls": Shared(Optional[List[str]], None, ("--base-url",),
                        "openai backend: server base URL, e.g. http://127.0.0.1:8000/v1; repeat for several "
                        "servers (requests are spread over them)."),
    "api": Shared(str, "auto", ("--api",),
                  "openai backend: completions (exact answer log-probabilities, tokenizer of --model needed), "
                  "chat (top-k log-probabilities of a hosted chat API) or auto."),
    "api_key_env": Shared(Optional[str], None, ("--api-key-env",),
                          "openai backend: environment variable holding the API key (default: OPENAI_API_KEY "
                          "when set)."),
    "concurrency": Shared(int, 32, ("--concurrency",), "openai backend: most requests in flight at once."),
    "tensor_parallel_size": Shared(int, 1, ("--tensor-parallel-size",), "vllm backend: GPUs per model replica."),
    "data_parallel_size": Shared(int, 1, ("--data-parallel-size",), "vllm backend: model replicas."),
    "max_model_len": Shared(Optional[int], None, ("--max-model-len",),
                            "vllm backend: context length (default: the model's)."),
    "gpu_memory_utilization": Shared(Optional[float], None, ("--gpu-memory-utilization",),
                                     "vllm backend: fraction of device memory for the engine (vLLM's default "
                                     "0.92; on CPU the KV-cache share of memory, e.g. 0.3)."),
    "template": Shared(Optional[str], None, ("--template",),
                       "Prompt template file (Jinja or format string) with {item_a} and {item_b}."),
    "system": Shared(Optional[str], None, ("--system",), "System message (default: the model's own)."),
    "labels": Shared(str, "A,B", ("--labels",), "The two answer labels, comma-separated."),
    "per_item": Shared(Optional[float], None, ("--per-item", "-k"),
                       "Comparisons per item (default 4; with --design active: of the random first round, default 2)."),
    "all_pairs": Shared(bool, False, ("--all-pairs",), "Use every pair (within groups) instead of --per-item."),
    "design": Shared(str, "random", ("--design",),
                     "random (balanced, k per item), greedy (information-greedy) or active (rounds of judge, solve, "
                     "choose the pairs the ranking is least sure of; needs --budget)."),
    "budget": Shared(Optional[int], None, ("--budget",),
                     "--design active: the most pairs to judge in all (each in both orders, so 2 prompts a pair)."),
    "batch_pairs": Shared(Optional[int], None, ("--batch-pairs",),
                          "--design active: pairs judged per round after the first (default: half the items)."),
    "stop_threshold": Shared(Optional[float], None, ("--stop-threshold",),
                             "--design active: stop early once the expected 1 - Spearman between the ranking and "
                             "the truth (from the standard errors) is below this, in (0, 1)."),
    "calibrate": Shared(bool, False, ("--calibrate",),
                        "Fit a temperature on the judge's log-odds against the gold order (--gold-field) and solve "
                        "with the calibrated probabilities; reports the expected calibration error before/after."),
    "seed": Shared(int, 0, ("--seed",), "Seed of the random design and subsamples."),
    "dispersion": Shared(str, "auto", ("--dispersion",),
                         "bt: auto or pearson (estimate how noisy the judgements are against a coin flip, phi, and "
                         "count each as 1/phi games: the prior weighs alpha * phi, standard errors scale by "
                         "sqrt(phi); auto skips it when the pairs leave no residual degrees of freedom), none (the "
                         "plain fit) or a number (phi)."),
    "bootstrap": Shared(Optional[int], None, ("--bootstrap",),
                        "Bootstrap replicates B of the solve: scores.csv gains low, high (90% interval), rank, "
                        "rank_best, rank_worst and p_best."),
    "batch_size": Shared(int, 16, ("--batch-size", "-b"), "Prompts per forward pass."),
    "threads": Shared(Optional[int], None, ("--threads",), "CPU threads for torch (default: torch's choice)."),
    "fit_on": Shared(Optional[str], None, ("--fit-on",),
                     "Items the affine map onto the gold scale is fitted on: FIELD=VALUE (e.g. split=train) or a "
                     "fraction (0.5); RMSE is reported on the rest."),
    "progress": Shared(bool, True, ("--progress/--no-progress",), "Show a progress bar."),
    "cache": Shared(bool, True, ("--cache/--no-cache",),
                    "Take prompts any earlier run judged with the same model from the judgement cache, and add "
                    "new ones to it."),
    "cache_dir": Shared(Optional[str], None, ("--cache-dir",),
                        "Judgement cache folder (default: $PYCOMP_CACHE_DIR, else ~/.cache/pycomp/judgements)."),
}

# Runs of shared options that commands take together, in --help order.
ITEM_FIELDS = ("text_field", "attribute", "noun", "context_field", "context_noun", "group_field", "id_field")
JUDGE_MODEL = ("model", "adapter", "device", "dtype", "quantization", "template", "system", "labels", "cache",
               "cache_dir", "backend", "base_urls", "api", "api_key_env", "concurrency", "tensor_parallel_size",
               "data_parallel_size", "max_model_len", "gpu_memory_utilization")
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
    # the active design's first round is small: 2 pairs per item unless --per-item says otherwise
    per_item = per_item_or_default(values.pop("per_item"), values["all_pairs"],
                                   default=2 if values.get("design") == "active" else 4)
    values["labels"] = _labels(values["labels"])
    if "base_urls" in values:
        values["base_urls"] = tuple(values["base_urls"] or ())
    if values["design"] not in ("random", "greedy", "active"):
        raise ValueError(f"--design {values['design']!r} is not one of: random, greedy, active (or use --all-pairs)")
    if "dispersion" in values:
        from pycomp.dispersion import parse_option

        parse_option(values["dispersion"], values.get("solver", "bt"), "--solver")
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
