"""Prompts, answer tokens, tokenised examples and the padding collators.

The prompts are the judge's: pair prompts are rendered by its own :func:`pycomp.judge.run.build_prompts`
(same template, answer prefix, chat template and system message as
``pycomp rank``), and the answer tokens are chosen among the judge's
:attr:`~pycomp.judge.transformers_backend.TransformersBackend.label_ids`, so an
adapter trained here improves exactly the probabilities the judge reads.

Every batch is left-padded with ``position_ids`` counting real tokens only,
as the judge runs it, so the last position of every row is the answer position.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from pycomp.judge.padding import left_pad, position_ids
# The prompt templates live in pycomp.judge.prompts; imported here under their old names too.
from pycomp.judge.prompts import (
    GENERATE_TEMPLATE,
    POINT_PREFIX,
    POINT_TEMPLATE,
    render_generate,
    render_point,
)
from pycomp.train.data import TrainingDataError

__all__ = [
    "AnswerTokens",
    "answer_token_id",
    "POINT_TEMPLATE",
    "POINT_PREFIX",
    "GENERATE_TEMPLATE",
    "PromptBuilder",
    "PairCollator",
    "RankCollator",
]

def answer_token_id(tokenizer, prompt: str, label: str, allowed: Sequence[int]) -> int:
    """The token the model writes for ``label`` right after ``prompt``.

    ``label`` is appended to ``prompt`` with and without a leading space (the
    spacing the prompt's end calls for first); the first spelling that adds
    exactly one token from ``allowed`` wins. Otherwise the first of ``allowed``.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    prompt : str
        A fully rendered prompt ending where the answer starts.
    label : str
    allowed : sequence of int
        The judge's token ids for ``label`` (all its spellings).

    Returns
    -------
    int
    """
    base = tokenizer.encode(prompt, add_special_tokens=False)
    spaced = not prompt[-1:].isspace() if prompt else False
    for text in ((" " + label, label) if spaced else (label, " " + label)):
        full = tokenizer.encode(prompt + text, add_special_tokens=False)
        if len(full) == len(base) + 1 and full[: len(base)] == base and full[-1] in set(allowed):
            return int(full[-1])
    return int(list(allowed)[0])


@dataclass
class AnswerTokens:
    """The answer tokens a run trains.

    Attributes
    ----------
    labels : tuple of str
        ``("A", "B")`` for pairs, ``("1", ..., "5")`` for scores.
    ids : list of int
        One token id per label (the spelling the model writes after the prompt),
        used by the fused head losses.
    variants : list of list of int
        Every spelling of each label (the judge sums their probabilities).
    """

    labels: tuple
    ids: list
    variants: list

    def as_dict(self) -> dict:
        return {"labels": list(self.labels), "ids": [int(i) for i in self.ids],
                "variants": [[int(i) for i in v] for v in self.variants]}


class PromptBuilder:
    """Renders and tokenises training prompts the way the judge does.

    Parameters
    ----------
    backend : pycomp.judge.transformers_backend.TransformersBackend
        The judge wrapper of the (base) model: its ``render`` (chat template,
        answer prefix) and ``label_ids`` are used.
    template : pycomp.judge.prompts.PairTemplate
    settings : pycomp.judge.run.PromptSettings
    max_length : int, optional
        Longer prompts are dropped (with one warning naming how many).
    """

    def __init__(self, backend, template, settings, max_length: Optional[int] = None):
        self.backend = backend
        self.tokenizer = backend.tokenizer
        self.template = template
        self.settings = settings
        limit = getattr(backend, "max_length", None)
        self.max_length = int(max_length) if max_length is not None else limit
        self.dropped = 0

    # ---- helpers ----------------------------------------------------------------------------
    def _encode(self, text: str) -> List[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _keep(self, ids: Sequence[int]) -> bool:
        if self.max_length is not None and len(ids) > self.max_length:
            self.dropped += 1
            return False
        return True

    def report_dropped(self, what: str) -> None:
        if self.dropped:
            warnings.warn(f"{self.dropped} {what} longer than max_length={self.max_length} tokens were dropped",
                          RuntimeWarning, stacklevel=3)

    # ---- pairs ------------------------------------------------------------------------------
    def pair_answer_tokens(self, prompt: str) -> AnswerTokens:
        """The two answer tokens, chosen among the judge's label ids after ``prompt``."""
        labels = tuple(self.backend.labels)
        variants = [list(map(int, v)) for v in self.backend.label_ids]
        ids = [answer_token_id(self.tokenizer, prompt, lab, var) for lab, var in zip(labels, variants)]
        return AnswerTokens(labels, ids, variants)

    def pair_prompts(self, texts: Sequence[str], pairs: np.ndarray,
                     contexts: Optional[Sequence[str]] = None) -> List[str]:
        """Prompts of every pair in both orders (row ``2k``: pair ``k`` as planned; ``2k + 1``: swapped)."""
        from pycomp.judge.run import build_prompts

        return build_prompts(self.backend, self.template, texts, pairs, self.settings, contexts)

    def pair_dataset(self, prompts: Sequence[str], targets: Sequence[float]) -> List[dict]:
        """Tokenised pair examples ``{"input_ids", "target"}`` (over-long prompts dropped)."""
        out = []
        for prompt, t in zip(prompts, targets):
            ids = self._encode(prompt)
            if self._keep(ids):
                out.append({"input_ids": ids, "target": float(t)})
        self.report_dropped("pair prompts")
        return out

    # ---- pointwise scores (rail) ------------------------------------------------------------
    def point_user(self, item: str, context: Optional[str], lo: int, hi: int) -> str:
        """The user message of the pointwise prompt (:func:`pycomp.judge.prompts.render_point`)."""
        s = self.settings
        return render_point(item, lo=lo, hi=hi, attribute=s.attribute, noun=s.noun, context=context,
                            context_noun=s.context_noun)

    def point_prompt(self, item: str, context: Optional[str], lo: int, hi: int,
                     rationale: Optional[str] = None) -> str:
        """The pointwise prompt up to the score digit (after the rationale when there is one)."""
        user = self.point_user(item, context, lo, hi)
        prefix = (rationale.strip() + "\n" if rationale else "") + POINT_PREFIX
        return self.backend.render(user, system=self.template.system, answer_prefix=prefix)

    def score_answer_tokens(self, lo: int, hi: int) -> AnswerTokens:
        """Score-digit tokens ``lo..hi``, as written after :data:`POINT_PREFIX`."""
        from pycomp.judge.transformers_backend import label_token_ids

        probe = self.point_prompt("Example.", None, lo, hi)
        labels = tuple(str(k) for k in range(lo, hi + 1))
        variants = [label_token_ids(self.tokenizer, lab, probe) for lab in labels]
        ids = [answer_token_id(self.tokenizer, probe, lab, var) for lab, var in zip(labels, variants)]
        if len(set(ids)) != len(ids):
            raise TrainingDataError(f"score tokens {labels} are not distinct single tokens for this tokenizer")
        return AnswerTokens(labels, ids, variants)

    def point_dataset(self, texts: Sequence[str], targets: Sequence[float], lo: int, hi: int,
                      contexts: Optional[Sequence[str]] = None,
                      rationales: Optional[Sequence[str]] = None) -> List[dict]:
        """Tokenised pointwise examples ``{"input_ids", "target"}`` (+ ``"labels"`` on rationale tokens)."""
        out = []
        for k, (text, t) in enumerate(zip(texts, targets)):
            ctx = contexts[k] if contexts is not None else None
            if rationales is None:
                ids = self._encode(self.point_prompt(text, ctx, lo, hi))
                ex = {"input_ids": ids, "target": float(t)}
            else:
                # prompt | rationale | "\nScore: ": cross-entropy on the rationale tokens only.
                head = self._encode(self.point_prompt(text, ctx, lo, hi)[: -len(POINT_PREFIX)])
                why = self._encode(rationales[k].strip())
                tail = self._encode("\n" + POINT_PREFIX)
                ids = head + why + tail
                labels = [-100] * len(head) + why + [-100] * len(tail)
                ex = {"input_ids": ids, "target": float(t), "labels": labels}
            if self._keep(ids):
                out.append(ex)
        self.report_dropped("score prompts")
        return out

    # ---- ranking (rank) ---------------------------------------------------------------------
    def rank_dataset(self, texts: Sequence[str], gold: Sequence[float], sets: Sequence[np.ndarray],
                     contexts: Optional[Sequence[str]] = None) -> List[dict]:
        """Tokenised candidate sets ``{"sequences", "prompt_lengths", "scores"}``.

        Each candidate is the reply to a generation prompt (the group's context
        when there is one), followed by the end-of-turn token.
        """
        s = self.settings
        eos = self.tokenizer.eos_token_id
        out = []
        for members in sets:
            ctx = contexts[members[0]] if contexts is not None else None
            user = render_generate(attribute=s.attribute, noun=s.noun, context=ctx, context_noun=s.context_noun)
            prompt = self._encode(self.backend.render(user, system=self.template.system))
            seqs, lengths, scores = [], [], []
            for i in members:
                seq = prompt + self._encode(texts[i]) + ([eos] if eos is not None else [])
                if not self._keep(seq):
                    continue
                seqs.append(seq)
                lengths.append(len(prompt))
                scores.append(float(gold[i]))
            if len(seqs) >= 2 and max(scores) > min(scores):
                out.append({"sequences": seqs, "prompt_lengths": lengths, "scores": scores})
        self.report_dropped("candidate sequences")
        return out


class PairCollator:
    """Left-pads ``input_ids`` and stacks ``target`` (and ``labels`` when present).

    Output: ``input_ids``, ``attention_mask``, ``position_ids`` (B, T) int64;
    ``target`` (B,) float32; ``labels`` (B, T) int64 with -100 where no
    cross-entropy applies (only when the examples carry labels).
    """

    def __init__(self, pad_id: int):
        self.pad_id = int(pad_id)

    def __call__(self, features: List[dict]) -> dict:
        import torch

        ids, mask = left_pad([f["input_ids"] for f in features], self.pad_id)
        batch = {
            "input_ids": ids,
            "attention_mask": mask,
            "position_ids": position_ids(mask),
            "target": torch.tensor([f["target"] for f in features], dtype=torch.float32),
        }
        if any("labels" in f for f in features):
            labels = [f.get("labels", [-100] * len(f["input_ids"])) for f in features]
            batch["labels"], _ = left_pad(labels, self.pad_id, fill=-100)
        return batch


class RankCollator:
    """Flattens candidate sets into one left-padded batch of sequences.

    Output: ``input_ids``, ``attention_mask``, ``position_ids`` (N, T) for
    the N candidates of the batch; ``labels`` (N, T) with the candidate's
    tokens and -100 on the prompt and padding; ``set_index`` (N,) the set of
    each candidate; ``scores`` (N,) float32 gold scores.
    """

    def __init__(self, pad_id: int):
        self.pad_id = int(pad_id)

    def __call__(self, features: List[dict]) -> dict:
        import torch

        seqs, labels, sets, scores = [], [], [], []
        for s, f in enumerate(features):
            for seq, plen, score in zip(f["sequences"], f["prompt_lengths"], f["scores"]):
                seqs.append(seq)
                labels.append([-100] * plen + list(seq[plen:]))
                sets.append(s)
                scores.append(score)
        ids, mask = left_pad(seqs, self.pad_id)
        lab, _ = left_pad(labels, self.pad_id, fill=-100)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "position_ids": position_ids(mask),
            "labels": lab,
            "set_index": torch.tensor(sets, dtype=torch.long),
            "scores": torch.tensor(scores, dtype=torch.float32),
        }
