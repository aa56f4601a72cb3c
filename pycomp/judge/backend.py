"""The judge backend interface.

A backend turns rendered prompts into the log-probabilities of the two answer
labels at the next token. Everything else (templates, both-order judging,
resumable files, combination) is backend-independent, so a vLLM or API backend
only has to implement :meth:`JudgeBackend.render` and
:meth:`JudgeBackend.label_logprobs`.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np


class PromptTooLongError(ValueError):
    """A prompt exceeds the model's context window.

    Attributes
    ----------
    index : int
        Position of the prompt in the batch passed to the backend.
    n_tokens, limit : int
    """

    def __init__(self, index: int, n_tokens: int, limit: int):
        self.index, self.n_tokens, self.limit = index, n_tokens, limit
        super().__init__(f"prompt {index} has {n_tokens} tokens, more than the model's context of {limit}")


@dataclass
class LabelScores:
    """The judge's answer for a batch of prompts.

    Attributes
    ----------
    logp_a, logp_b : numpy.ndarray, float64, shape (n,)
        Log-probability (softmax over the whole vocabulary) of answering the
        first label and the second label; each label's spelling variants
        (``"A"``, ``" A"``) are summed.
    """

    logp_a: np.ndarray
    logp_b: np.ndarray

    @property
    def p_a(self) -> np.ndarray:
        """p(first label) = sigmoid(l_A - l_B), the softmax over the two answers."""
        return 1.0 / (1.0 + np.exp(self.logp_b - self.logp_a))

    @property
    def mass(self) -> np.ndarray:
        """Probability the judge put on either answer (1 = always answers A or B)."""
        return np.exp(self.logp_a) + np.exp(self.logp_b)


class JudgeBackend(abc.ABC):
    """Scores rendered prompts by the next-token probability of two answer labels."""

    #: short backend name, e.g. "transformers"
    name: str = "abstract"

    @abc.abstractmethod
    def render(self, user: str, system: Optional[str] = None, answer_prefix: str = "") -> str:
        """The model's full prompt: chat template around ``user``, the generation prompt, then ``answer_prefix``."""

    @abc.abstractmethod
    def label_logprobs(self, prompts: Sequence[str]) -> LabelScores:
        """Score a batch of rendered prompts; raises :class:`PromptTooLongError` for an over-long one."""

    @abc.abstractmethod
    def fingerprint(self) -> dict:
        """What identifies the model, adapter, precision and answer tokens in a resumable file."""

    def sort_key(self, prompt: str) -> int:
        """Length used to sort prompts into batches of similar length."""
        return len(prompt)

    def describe(self) -> dict:
        """Settings recorded in run.json (defaults to the fingerprint)."""
        return self.fingerprint()
