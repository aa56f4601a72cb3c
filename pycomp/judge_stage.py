"""The judge stage of a run: the prompt template, the judge model and the judging of the planned pairs.

The backends, prompts and the resumable judging are in :mod:`pycomp.judge`;
this module only reads them off a :class:`~pycomp.config.RankConfig`, so
``pycomp rank`` and ``pycomp judge`` judge the same way. torch and transformers
are imported only when a judge is loaded.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from pycomp.config import PathLike, RankConfig
from pycomp.items import Items, ItemsError

__all__ = ["template_for", "load_judge", "judge_items"]


def template_for(items: Items, config: RankConfig):
    """The prompt template of the run (``config.template``, else the default).

    Raises
    ------
    ItemsError
        The items have contexts but the template has no context placeholder.
    ValueError
        A template file that cannot be used (see :func:`pycomp.judge.prompts.load_template`).
    """
    from pycomp.judge.prompts import load_template

    template = load_template(config.template, system=config.system, labels=config.labels)
    if items.contexts is not None and not template.uses_context:
        raise ItemsError(f"--context-field {config.context_field!r} was given but template {template.name!r} has no "
                         f"context placeholder")
    return template


BACKENDS = ("transformers", "vllm", "openai")


def load_judge(config: RankConfig, progress: Optional[Callable[[str], None]] = None):
    """Load the judge of ``config``: ``config.backend`` with its model, adapter, labels and engine options.

    Raises
    ------
    ValueError
        An unknown backend, or an option the backend cannot use (``--base-url`` without
        ``--backend openai``, ``--backend openai`` without ``--base-url``, ...).
    """
    backend = str(config.backend or "transformers").lower()
    base_urls = tuple(config.base_urls or ())
    if backend not in BACKENDS:
        raise ValueError(f"--backend {config.backend!r} is not one of: {', '.join(BACKENDS)}")
    if base_urls and backend != "openai":
        raise ValueError(f"--base-url is for --backend openai (this run uses --backend {backend})")
    if backend == "openai":
        from pycomp.judge.openai_backend import OpenAIBackend

        if config.adapter:
            raise ValueError("--adapter cannot be applied by --backend openai: load the adapter in the server "
                             "(vllm serve --enable-lora --lora-modules NAME=PATH) and pass --model NAME")
        return OpenAIBackend(config.model, base_urls, labels=config.labels, api=config.api,
                             api_key_env=config.api_key_env, concurrency=config.concurrency)
    if backend == "vllm":
        from pycomp.judge.vllm_backend import VLLMBackend

        return VLLMBackend.load(config.model, adapter=config.adapter, labels=config.labels, dtype=config.dtype,
                                tensor_parallel_size=config.tensor_parallel_size,
                                data_parallel_size=config.data_parallel_size, max_model_len=config.max_model_len,
                                gpu_memory_utilization=config.gpu_memory_utilization, seed=config.seed,
                                progress=progress)
    from pycomp.judge.transformers_backend import TransformersBackend

    return TransformersBackend.load(config.model, adapter=config.adapter, device=config.device, dtype=config.dtype,
                                    quantization=config.quantization, labels=config.labels, progress=progress)


def judge_items(backend, template, items: Items, pairs: np.ndarray, config: RankConfig, log: PathLike):
    """Judge ``pairs`` of ``items`` in both orders, resuming from the judgements file ``log``.

    Prompts not in ``log`` are taken from the judgement cache when an earlier
    run judged them (``config.cache``, ``config.cache_dir``).

    Returns
    -------
    pycomp.judge.run.JudgeResult
        One combined comparison per pair and the judge's summary.
    """
    from pycomp.judge.cache import open_cache
    from pycomp.judge.run import PromptSettings, judge_pairs

    settings = PromptSettings(attribute=config.attribute, noun=config.noun, context_noun=config.context_noun)
    cache = open_cache(config.cache, config.cache_dir)
    try:
        return judge_pairs(backend, template, items.texts, pairs, out=log, ids=items.ids, groups=items.groups,
                           contexts=items.contexts, settings=settings, batch_size=config.batch_size,
                           progress=config.progress, cache=cache)
    finally:
        if cache is not None:
            cache.close()
