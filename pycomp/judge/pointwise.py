"""Pointwise scoring: the expected score over the score tokens (regression-aware inference).

Each item is shown alone with the pointwise prompt of ``pycomp train
--objective rail`` (:func:`pycomp.judge.prompts.render_point`, reply prefilled
with :data:`~pycomp.judge.prompts.POINT_PREFIX`, wrapped by the backend's chat
template exactly as training wraps it), so an adapter trained there scores
here the way it was trained. The backend gives the log-probability of every
score label ``s_k`` (value ``v_k``) at the next token, and the score is the
expected value (RAIL, Lukasik et al. 2024; TRACT, Chiang et al. 2025)

    y_hat = sum_k v_k p_k,

with ``p_k = P(s_k) / sum_j P(s_j)`` (``normalize="scores"``, the default: a
distribution over the scale) or ``p_k = P(s_k)`` over the whole vocabulary
(``normalize="vocab"``, TRACT's training form; it shrinks towards 0 when the
judge puts little mass on the scale). The judgements file and the judgement
cache work as for pairs (:func:`pycomp.judge.run.run_prompts`).

Judgements file format: a header ``{"format": "pycomp-scores/1", "model": ..., "template": ..., "prompt": ...}``,
then one record per item: ``{"id", "group"?, "key", "logp": [...], "mass"}`` (``"cached": true`` when it came
from the judgement cache).
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from pycomp.judge.backend import JudgeBackend, LabelScores
from pycomp.judge.prompts import POINT_PREFIX, POINT_TEMPLATE, render_point
from pycomp.judge.run import JudgementLog, PromptSettings, _prompt_key, run_prompts

__all__ = ["FORMAT", "DEFAULT_SCALE", "NORMALIZE", "ScaleError", "ScoreResult", "parse_scale", "point_prompts",
           "point_fingerprint", "expected_scores", "score_items", "score_summary", "score_warnings"]

FORMAT = "pycomp-scores/1"
DEFAULT_SCALE = ("1", "2", "3", "4", "5")
NORMALIZE = ("scores", "vocab")


class ScaleError(ValueError):
    """A score scale that cannot be used (non-numeric or repeated labels, fewer than two)."""


def parse_scale(spec) -> Tuple[Tuple[str, ...], np.ndarray]:
    """The score labels and their values from ``--scale``.

    Parameters
    ----------
    spec : str or sequence of str
        Comma-separated labels (``"1,2,3,4,5"``), or a range of integers ``"1-5"``
        (also ``"0-10"``); each label is also its value.

    Returns
    -------
    labels : tuple of str
    values : numpy.ndarray, float64

    Raises
    ------
    ScaleError
        Fewer than two labels, a label that is not a number, or a repeated value.
    """
    if isinstance(spec, str):
        text = spec.strip()
        ends = text.split("-")
        if "," not in text and len(ends) == 2 and all(e.strip().isdigit() for e in ends):
            lo, hi = int(ends[0]), int(ends[1])
            if hi <= lo:
                raise ScaleError(f"--scale {spec!r}: the range {lo}-{hi} is empty; write LOW-HIGH, e.g. 1-5")
            parts = [str(k) for k in range(lo, hi + 1)]
        else:
            parts = [x.strip() for x in text.split(",")]
    else:
        parts = [str(x).strip() for x in spec]
    if len(parts) < 2 or any(not x for x in parts):
        raise ScaleError(f"--scale {spec!r} must list two or more score labels separated by commas, e.g. 1,2,3,4,5 "
                         f"(or a range, 1-5)")
    values = []
    for x in parts:
        try:
            v = float(x)
        except ValueError:
            v = float("nan")
        if not math.isfinite(v):
            raise ScaleError(f"--scale label {x!r} is not a number: the expected score needs numeric labels, "
                             f"e.g. 1,2,3,4,5")
        values.append(v)
    seen: Dict[float, str] = {}
    for x, v in zip(parts, values):
        if v in seen:
            raise ScaleError(f"--scale labels {seen[v]!r} and {x!r} have the same value; give each score once")
        seen[v] = x
    return tuple(parts), np.asarray(values, dtype=np.float64)


def _ends(labels: Sequence[str], values: np.ndarray) -> Tuple[str, str]:
    """The labels of the lowest and the highest value (the ends the prompt names)."""
    return labels[int(np.argmin(values))], labels[int(np.argmax(values))]


def point_prompts(backend: JudgeBackend, texts: Sequence[str], labels: Sequence[str], values: np.ndarray,
                  settings: PromptSettings, contexts: Optional[Sequence[Optional[str]]] = None,
                  system: Optional[str] = None) -> List[str]:
    """The rendered pointwise prompt of every item, ending where the score label comes.

    The same rendering as training's ``rail`` prompts
    (:meth:`pycomp.train.collator.PromptBuilder.point_prompt`).
    """
    lo, hi = _ends(labels, values)
    out = []
    for k, text in enumerate(texts):
        ctx = contexts[k] if contexts is not None else None
        user = render_point(text, lo=lo, hi=hi, attribute=settings.attribute, noun=settings.noun, context=ctx,
                            context_noun=settings.context_noun)
        out.append(backend.render(user, system=system, answer_prefix=POINT_PREFIX))
    return out


def point_fingerprint(labels: Sequence[str], system: Optional[str]) -> dict:
    """What identifies the pointwise prompt in a judgements file."""
    text = "\x00".join([POINT_TEMPLATE, POINT_PREFIX, system or "", *labels])
    return {"name": "pointwise", "sha256": hashlib.sha256(text.encode()).hexdigest()[:16], "labels": list(labels)}


def expected_scores(logp: np.ndarray, values, normalize: str = "scores") -> np.ndarray:
    """``sum_k v_k p_k`` for each row of label log-probabilities.

    Parameters
    ----------
    logp : numpy.ndarray, shape (n, n_labels)
    values : array_like, shape (n_labels,)
    normalize : {"scores", "vocab"}
        ``p_k`` renormalised over the labels, or the label probabilities over the vocabulary as they are.
    """
    scores = LabelScores(logp=np.asarray(logp, dtype=np.float64))
    if normalize == "scores":
        return scores.expected(values)
    if normalize == "vocab":
        return np.exp(scores.logp) @ np.asarray(values, dtype=np.float64)
    raise ValueError(f"--normalize {normalize!r} is not one of: {', '.join(NORMALIZE)}")


def score_summary(mass: np.ndarray) -> dict:
    """Answer mass figures of a pointwise run."""
    mass = np.asarray(mass, dtype=np.float64)
    if len(mass) == 0:
        return {"n_items": 0}
    return {"n_items": int(len(mass)), "answer_mass_mean": float(mass.mean()), "answer_mass_min": float(mass.min()),
            "low_mass_fraction": float(np.mean(mass < 0.5))}


def score_warnings(summary: dict) -> List[str]:
    """A plain-language warning when the judge mostly does not answer with a score label."""
    if summary.get("n_items") and summary["answer_mass_mean"] < 0.5:
        return [f"the judge put on average only {summary['answer_mass_mean']:.2f} of its next-token probability on "
                f"the score labels: it is mostly not answering with a score; the expected scores rest on little"]
    return []


@dataclass
class ScoreResult:
    """What :func:`score_items` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per item: ``id``, ``group`` (with groups), ``score`` (expected
        score), ``sd`` (standard deviation of the distribution renormalised over the labels), ``mass``
        (probability on the score labels over the whole vocabulary), and
        ``p_<label>`` for each label (the distribution the score is the mean of).
    summary : dict
        :func:`score_summary` plus the counts of :meth:`pycomp.judge.run.PromptRun.summary`.
    """

    table: pd.DataFrame
    summary: dict = field(default_factory=dict)


def _batches(todo: List[int], prompts: Sequence[str], contexts, batch_size: int, sort_key) -> List[List[int]]:
    """Prompts grouped by context (whose tokens the backend then runs once), longest first, ``batch_size`` each."""
    rank: Dict[object, int] = {}
    if contexts is not None:
        for k in todo:
            rank.setdefault(contexts[k], len(rank))
    group = (lambda k: rank[contexts[k]]) if contexts is not None else (lambda k: 0)
    ordered = sorted(todo, key=lambda k: (group(k), -sort_key(prompts[k])))
    out: List[List[int]] = []
    current: List[int] = []
    for k in ordered:
        if current and (len(current) >= batch_size or (group(k) != group(current[-1])
                                                       and 2 * len(current) >= batch_size)):
            out.append(current)
            current = []
        current.append(k)
    if current:
        out.append(current)
    return out


def score_items(
    backend: JudgeBackend,
    texts: Sequence[str],
    *,
    out,
    values=None,
    ids: Optional[Sequence] = None,
    groups: Optional[Sequence] = None,
    contexts: Optional[Sequence[Optional[str]]] = None,
    settings: Optional[PromptSettings] = None,
    system: Optional[str] = None,
    normalize: str = "scores",
    batch_size: int = 16,
    progress: bool = True,
    cache=None,
    on_batch: Optional[Callable[[int, int], None]] = None,
) -> ScoreResult:
    """Score every item by its expected score over the backend's labels, resumably.

    Parameters
    ----------
    backend : JudgeBackend
        Built with the score labels as its ``labels`` (e.g. ``("1", ..., "5")``).
    texts : sequence of str
    out : path
        The judgements JSONL file; created, or resumed when it exists.
    values : array_like, optional
        The value of each label (default: the labels read as numbers).
    ids, groups, contexts
        As for :func:`pycomp.judge.run.judge_pairs`; an item's context is shown above it.
    settings : PromptSettings
    system : str, optional
        System message (as ``pycomp train --system``).
    normalize : {"scores", "vocab"}
        See :func:`expected_scores`.
    batch_size : int
    progress : bool
    cache : pycomp.judge.cache.JudgementCache, optional
    on_batch : callable(done, total), optional

    Returns
    -------
    ScoreResult

    Raises
    ------
    ScaleError
        Labels that are not numbers, or ``values`` of the wrong length.
    JudgementsMismatchError
        ``out`` was written with another model, scale or prompt.
    ValueError
        A prompt longer than the model's context (the item is named), bad sizes.
    """
    settings = settings or PromptSettings()
    labels = tuple(backend.labels)
    if values is None:
        labels, values = parse_scale(list(labels))
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) != len(labels):
        raise ScaleError(f"{len(values)} score values for the backend's {len(labels)} labels {labels}")
    if normalize not in NORMALIZE:
        raise ValueError(f"--normalize {normalize!r} is not one of: {', '.join(NORMALIZE)}")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    n = len(texts)
    ids = [str(x) for x in (ids if ids is not None else range(n))]
    if len(ids) != n:
        raise ValueError(f"ids has {len(ids)} entries for {n} items")
    if groups is not None:
        groups = [str(g) for g in groups]
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} entries for {n} items")
    if contexts is not None and len(contexts) != n:
        raise ValueError(f"contexts has {len(contexts)} entries for {n} items")

    header = {
        "format": FORMAT,
        "model": backend.fingerprint(),
        "template": point_fingerprint(labels, system),
        "prompt": settings.as_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    log = JudgementLog(out, header)
    prompts = point_prompts(backend, texts, labels, values, settings, contexts, system)
    keys = [_prompt_key(p) for p in prompts]

    def make_records(batch, scores):
        mass = scores.mass
        records = []
        for t, k in enumerate(batch):
            rec = {"id": ids[k]}
            if groups is not None:
                rec["group"] = groups[k]
            rec.update({"key": keys[k], "logp": [float(x) for x in scores.logp[t]], "mass": float(mass[t])})
            records.append(rec)
        return records

    def describe(k):
        where = f" in group {groups[k]!r}" if groups is not None else ""
        return f"the prompt scoring item {ids[k]!r}{where} (row {k + 1})"

    def too_long(k, exc):
        return ValueError(f"{describe(k)} has {exc.n_tokens} tokens, more than the model's context of {exc.limit}; "
                          f"shorten the item or its context")

    run = run_prompts(backend, prompts, keys, log, make_records, lambda rec: rec["logp"],
                      batches=lambda todo: _batches(todo, prompts, contexts, batch_size, backend.sort_key),
                      too_long=too_long, describe=describe, cache=cache, progress=progress, unit="item",
                      on_batch=on_batch)

    logp = np.array([run.done[key]["logp"] for key in keys], dtype=np.float64).reshape(n, len(labels))
    scores = LabelScores(logp=logp)
    mean = expected_scores(logp, values, normalize)
    p = scores.probs
    sd = np.sqrt(np.maximum(p @ (values ** 2) - (p @ values) ** 2, 0.0))
    table = pd.DataFrame({"id": ids})
    if groups is not None:
        table["group"] = groups
    table["score"] = mean
    table["sd"] = sd
    table["mass"] = scores.mass
    for j, label in enumerate(labels):
        table[f"p_{label}"] = scores.probs[:, j]
    summary = score_summary(scores.mass)
    summary.update(run.summary(cache))
    summary.update({"batch_size": int(batch_size), "normalize": normalize, "labels": list(labels),
                    "values": values.tolist()})
    return ScoreResult(table, summary)
