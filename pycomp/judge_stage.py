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


def load_judge(config: RankConfig, progress: Optional[Callable[[str], None]] = None):
    """Load the judge model of ``config`` (model, adapter, device, dtype, quantization, labels)."""
    from pycomp.judge.transformers_backend import TransformersBackend

    return TransformersBackend.load(config.model, adapter=config.adapter, device=config.device, dtype=config.dtype,
                                    quantization=config.quantization, labels=config.labels, progress=progress)


def judge_items(backend, template, items: Items, pairs: np.ndarray, config: RankConfig, log: PathLike):
    """Judge ``pairs`` of ``items`` in both orders, resuming from the judgements file ``log``.

    Returns
    -------
    pycomp.judge.run.JudgeResult
        One combined comparison per pair and the judge's summary.
    """
    from pycomp.judge.run import PromptSettings, judge_pairs

    settings = PromptSettings(attribute=config.attribute, noun=config.noun, context_noun=config.context_noun)
    return judge_pairs(backend, template, items.texts, pairs, out=log, ids=items.ids, groups=items.groups,
                       contexts=items.contexts, settings=settings, batch_size=config.batch_size,
                       progress=config.progress)
