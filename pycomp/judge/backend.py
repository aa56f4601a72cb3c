"""The judge backend interface.

A backend turns rendered prompts into the log-probabilities of its answer
labels at the next token (two labels, "A"/"B", for pairwise judging; more,
e.g. "1".."5", for pointwise scoring). Everything else (templates, both-order judging,
resumable files, combination) is backend-independent, so a vLLM or API backend
only has to implement :meth:`JudgeBackend.render` and
:meth:`JudgeBackend.label_logprobs`.
"""
from __future__ import annotations

import abc
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


class LabelScores:
    """The judge's answer for a batch of prompts: the log-probability of each answer label.

    Built from a matrix (``LabelScores(logp=M)``) or, for two labels, from the
    two columns (``LabelScores(logp_a, logp_b)``).

    Parameters
    ----------
    logp_a, logp_b : array_like, float, shape (n,), optional
        Log-probabilities of the first and the second label (two-label form).
    logp : array_like, float, shape (n, n_labels), optional
        Log-probabilities of every label (at least two columns).

    Attributes
    ----------
    logp : numpy.ndarray, float64, shape (n, n_labels)
        Log-probability (softmax over the whole vocabulary) of answering each
        label at the next token; each label's spelling variants (``"A"``,
        ``" A"``) are summed.
    """

    def __init__(self, logp_a=None, logp_b=None, *, logp=None):
        if logp is None:
            if logp_a is None or logp_b is None:
                raise ValueError("LabelScores needs logp_a and logp_b, or logp=")
            logp = np.column_stack([np.asarray(logp_a, dtype=np.float64).reshape(-1),
                                    np.asarray(logp_b, dtype=np.float64).reshape(-1)])
        elif logp_a is not None or logp_b is not None:
            raise ValueError("give LabelScores either logp_a and logp_b, or logp=, not both")
        logp = np.asarray(logp, dtype=np.float64)
        if logp.ndim != 2 or logp.shape[1] < 2:
            raise ValueError(f"logp must have shape (n, n_labels) with n_labels >= 2, got {logp.shape}")
        self.logp = logp

    def __len__(self) -> int:
        return self.logp.shape[0]

    def __repr__(self) -> str:
        return f"LabelScores(n={len(self)}, n_labels={self.n_labels})"

    @property
    def n_labels(self) -> int:
        return self.logp.shape[1]

    @property
    def logp_a(self) -> np.ndarray:
        """Log-probability of the first label, shape (n,)."""
        return self.logp[:, 0]

    @property
    def logp_b(self) -> np.ndarray:
        """Log-probability of the second label, shape (n,)."""
        return self.logp[:, 1]

    @property
    def p_a(self) -> np.ndarray:
        """p(first label) = sigmoid(l_A - l_B), the softmax over the first two answers."""
        return 1.0 / (1.0 + np.exp(self.logp_b - self.logp_a))

    @property
    def mass(self) -> np.ndarray:
        """Probability the judge put on any of the answers (1 = always answers one of the labels)."""
        return np.exp(self.logp).sum(axis=1)

    @property
    def probs(self) -> np.ndarray:
        """The answer distribution renormalised over the labels, shape (n, n_labels); rows sum to 1."""
        shifted = self.logp - self.logp.max(axis=1, keepdims=True)
        w = np.exp(shifted)
        return w / w.sum(axis=1, keepdims=True)

    def expected(self, values) -> np.ndarray:
        """Expected value of the answer over the labels: ``sum_k probs[:, k] * values[k]``.

        Parameters
        ----------
        values : array_like, shape (n_labels,)
            The number each label stands for (e.g. 1..5 for the labels "1".."5").

        Returns
        -------
        numpy.ndarray, float64, shape (n,)
        """
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.shape[0] != self.n_labels:
            raise ValueError(f"expected() needs {self.n_labels} values, one per label, got {values.shape[0]}")
        return self.probs @ values

    def take(self, index) -> "LabelScores":
        """The rows at ``index`` (an integer array or slice)."""
        return LabelScores(logp=self.logp[index])

    @classmethod
    def concat(cls, parts: Sequence["LabelScores"], n_labels: int) -> "LabelScores":
        """Stack the rows of ``parts`` (an empty list gives zero rows of ``n_labels`` columns)."""
        if not parts:
            return cls(logp=np.zeros((0, n_labels)))
        return cls(logp=np.concatenate([p.logp for p in parts], axis=0))


def check_label_ids(labels: Sequence[str], label_ids: Sequence[Sequence[int]]) -> None:
    """Refuse answer labels that share a token id (their probabilities would be counted twice).

    Parameters
    ----------
    labels : sequence of str
    label_ids : sequence of sequence of int
        The token ids of each label, in the order of ``labels``.

    Raises
    ------
    ValueError
        Naming the first two labels found to share ids, and the ids.
    """
    seen = {}
    for label, ids in zip(labels, label_ids):
        for other, other_ids in seen.items():
            overlap = set(ids) & set(other_ids)
            if overlap:
                raise ValueError(f"labels {other!r} and {label!r} (of {tuple(labels)}) share token ids "
                                 f"{sorted(overlap)}; choose distinct labels")
        seen[label] = ids


def check_labels(labels: Sequence[str]) -> tuple:
    """Validate answer labels: two or more distinct non-empty strings; returns them as a tuple."""
    labels = tuple(labels)
    if len(labels) < 2 or any(not isinstance(x, str) or not x.strip() for x in labels):
        raise ValueError(f"labels={labels!r} must be two or more non-empty strings")
    stripped = [x.strip() for x in labels]
    if len(set(stripped)) != len(stripped):
        raise ValueError(f"labels={labels!r} must be different from each other")
    return labels


class JudgeBackend(abc.ABC):
    """Scores rendered prompts by the next-token probability of its answer labels.

    A backend is built with ``labels=`` (two or more answer strings) and keeps
    them in ``self.labels``; :meth:`label_logprobs` returns one column per
    label in that order.
    """

    #: short backend name, e.g. "transformers"
    name: str = "abstract"
    #: the answer labels, in the column order of :attr:`LabelScores.logp`
    labels: tuple = ("A", "B")

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


def model_fingerprint(name: str, info: dict, use_chat_template: bool, label_ids) -> dict:
    """The fingerprint of a backend that runs a model of its own (transformers, vLLM in-process).

    Parameters
    ----------
    name : str
        The backend's name.
    info : dict
        What :func:`pycomp.judge.models.load_model` found: identity, adapter hash, dtype, quantization.
    use_chat_template : bool
    label_ids : sequence of sequence of int
        The token ids of each label's spellings.
    """
    return {
        "backend": name,
        "model": info.get("identity") or info.get("model"),
        "adapter": info.get("adapter_sha256"),
        "dtype": info.get("dtype"),
        "quantization": info.get("quantization", "none"),
        "chat_template": use_chat_template,
        "label_ids": [list(map(int, ids)) for ids in label_ids],
    }
