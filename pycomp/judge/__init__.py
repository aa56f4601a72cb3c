"""The LLM judge: p(first item wins) from the next-token logits of two answer labels.

Layers
------
:mod:`pycomp.judge.models`
    Resolve, fetch (``pycomp models fetch smollm2-135m``), convert and load models.
:mod:`pycomp.judge.prompts`
    Pairwise templates (attribute, noun, optional context, answer prefix); the pointwise
    and generation prompts of ``pycomp train``.
:mod:`pycomp.judge.padding`
    Left-padded token batches with position ids counting real tokens (training uses them too).
:mod:`pycomp.judge.backend`
    The backend interface (:class:`JudgeBackend`); a vLLM backend implements it too.
:mod:`pycomp.judge.transformers_backend`
    :class:`TransformersBackend`: batched, left-padded, last-position-only logits,
    shared-prefix reuse.
:mod:`pycomp.judge.vllm_backend`
    :class:`VLLMBackend`: an in-process vLLM engine; exact answer log-probabilities
    (``SamplingParams.logprob_token_ids``).
:mod:`pycomp.judge.openai_backend`, :mod:`pycomp.judge.http`
    :class:`OpenAIBackend`: OpenAI-compatible servers over HTTP (several URLs, bounded
    concurrency, retries); exact on vLLM's ``/completions``, top-k on hosted chat APIs.
:mod:`pycomp.judge.run`
    :func:`judge_pairs`: both orders, combination, position-bias report, resumable JSONL.
:mod:`pycomp.judge.cache`
    :class:`JudgementCache`: label log-probabilities of every prompt any run judged, keyed by the
    backend fingerprint and the prompt (SQLite, WAL; shared by processes; ``pycomp cache``).
:mod:`pycomp.judge.pointwise`
    :func:`score_items`: the expected score over the score tokens (``pycomp score``; RAIL/TRACT).

Everything here imports torch/transformers lazily, so ``import pycomp.judge`` is cheap.
"""
from pycomp.judge.backend import JudgeBackend, LabelScores, PromptTooLongError
from pycomp.judge.models import DEFAULT_MODEL, REGISTRY, cache_dir, fetch_model, load_model, resolve_model
from pycomp.judge.prompts import PairTemplate, TemplateError, load_template
from pycomp.judge.run import (
    JudgementsMismatchError, JudgeResult, PromptSettings, combine_orders, judge_pairs, judge_summary,
)

__all__ = [
    "DEFAULT_MODEL", "REGISTRY", "JudgeBackend", "JudgeResult", "JudgementsMismatchError", "LabelScores",
    "PairTemplate", "PromptSettings", "PromptTooLongError", "TemplateError", "TransformersBackend",
    "VLLMBackend", "OpenAIBackend",
    "cache_dir", "combine_orders", "fetch_model", "judge_pairs", "judge_summary", "load_model", "load_template",
    "resolve_model",
]


def __getattr__(name):
    if name == "TransformersBackend":
        from pycomp.judge.transformers_backend import TransformersBackend

        return TransformersBackend
    if name == "VLLMBackend":
        from pycomp.judge.vllm_backend import VLLMBackend

        return VLLMBackend
    if name == "OpenAIBackend":
        from pycomp.judge.openai_backend import OpenAIBackend

        return OpenAIBackend
    raise AttributeError(f"module 'pycomp.judge' has no attribute {name!r}")
