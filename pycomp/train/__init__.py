"""Fine-tuning LLM judges on gold scores (LoRA / QLoRA, fused head losses).

The method of the founding paper: train the judge on pairs whose soft target
``p* = sig(gamma (s_i - s_j) / std(s))`` comes from gold scores, so its
pair-token probabilities match what PoE-BT assumes; the adapter then plugs
into ``pycomp rank --adapter DIR``. Objectives: ``soft``, ``hard`` (the
1 / 0 / 0.5 baseline), ``rail`` (regression-aware score loss, TRACT) and
``rank`` (RRESCUE).

Modules
-------
:mod:`pycomp.train.data`
    Gold checks, held-out split by group, pairs and targets (numpy only).
:mod:`pycomp.train.config`
    :class:`JudgeTrainingConfig`, a ``transformers.TrainingArguments``.
:mod:`pycomp.train.collator`
    Prompts as the judge renders them, answer tokens, padding collators.
:mod:`pycomp.train.objectives`
    The losses, on :mod:`pycomp.ops` (fused head losses) or the plain
    Hugging Face path.
:mod:`pycomp.train.model`
    Base model (4-bit on CUDA, fp32 on CPU) with LoRA adapters.
:mod:`pycomp.train.trainer`
    :class:`JudgeTrainer` (a ``transformers.Trainer``) and :func:`train_judge`.

Only :mod:`pycomp.train.data` is imported eagerly; the rest (torch,
transformers, peft) on first attribute access.
"""
from __future__ import annotations

import importlib

from pycomp.train.data import (
    OBJECTIVES,
    TrainingDataError,
    check_gold,
    pair_examples,
    pair_targets,
    point_examples,
    rank_examples,
    split_groups,
)

_LAZY = {
    "JudgeTrainingConfig": "pycomp.train.config",
    "JudgeTrainer": "pycomp.train.trainer",
    "PreparedRun": "pycomp.train.trainer",
    "prepare_training": "pycomp.train.trainer",
    "train_judge": "pycomp.train.trainer",
    "expected_scores": "pycomp.train.trainer",
    "PromptBuilder": "pycomp.train.collator",
    "PairCollator": "pycomp.train.collator",
    "RankCollator": "pycomp.train.collator",
    "AnswerTokens": "pycomp.train.collator",
    "PairObjective": "pycomp.train.objectives",
    "ScoreObjective": "pycomp.train.objectives",
    "RankObjective": "pycomp.train.objectives",
    "load_base_model": "pycomp.train.model",
    "add_lora": "pycomp.train.model",
}

__all__ = [
    "OBJECTIVES", "TrainingDataError", "check_gold", "pair_examples", "pair_targets", "point_examples",
    "rank_examples", "split_groups", *_LAZY,
]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pycomp.train' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
