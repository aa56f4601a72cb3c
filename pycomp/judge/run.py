"""Resumable both-order judging of planned pairs.

Every unordered pair ``(i, j)`` is judged twice, once with ``i`` shown first
and once with ``j`` shown first, and combined as

    p_ij = (p(A = i) + 1 - p(A = j)) / 2,

which cancels the judge's position bias. The raw ordered judgements go to a
JSONL file as each batch finishes (appended, flushed and fsynced), so a killed
run loses at most the batch in flight, and rerunning the same command skips
every prompt already judged. The file's first line records the model and the
template; a run with a different model or template on the same file is
refused rather than mixing results.

With a judgement cache (:mod:`pycomp.judge.cache`), a prompt that is not in
the file but was judged by any earlier run with the same backend fingerprint is
taken from the cache (and written to the file, marked ``"cached": true``); what
is judged now goes to the file first (marked ``"cached": false``), then to the
cache. Records without the mark (judged with ``--no-cache``, or before the
cache existed) are added to the cache when a run with it reads them. :func:`run_prompts`
does this for any list of prompts (pairwise here, pointwise in
:mod:`pycomp.judge.pointwise`).

Judgements file format (one JSON object per line)::

    {"format": "pycomp-judgements/1", "model": {...}, "template": {...}, ...}   # header
    {"a": "id3", "b": "id7", "key": "<sha of the prompt>", "p_a": 0.73, "logp_a": -0.9, "logp_b": -1.9, "mass": 0.54}

With groups a record also has ``"group"`` (ids need only be unique within a
group). Records are found again by ``key``, the hash of the prompt itself, so
resuming does not depend on ids or groups, and files written before the
``group`` field read the same.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from pycomp.judge.backend import JudgeBackend, LabelScores, PromptTooLongError
from pycomp.judge.prompts import PairTemplate

FORMAT = "pycomp-judgements/1"


class JudgementsMismatchError(ValueError):
    """The judgements file was written with another model or template."""


def combine_orders(p_first, p_second):
    """Combine both orders of a pair: ``(p(A=i) + 1 - p(A=j)) / 2``.

    Parameters
    ----------
    p_first : array-like
        p(A) with ``i`` shown as A.
    p_second : array-like
        p(A) with ``j`` shown as A.

    Returns
    -------
    numpy.ndarray
        Probability that ``i`` beats ``j`` with the position bias removed.
    """
    return (np.asarray(p_first, dtype=np.float64) + 1.0 - np.asarray(p_second, dtype=np.float64)) / 2.0


def judge_summary(p_ij, p_ji, mass_ij, mass_ji) -> dict:
    """Position bias, order consistency and answer-token mass of a set of both-order judgements.

    Returns
    -------
    dict
        ``p_first_mean``: mean p(A) over every ordered judgement (0.5 = no position
        bias); ``position_bias``: that minus 0.5; ``order_consistency``: fraction
        of pairs whose winner is the same in both orders; ``answer_mass_mean`` /
        ``answer_mass_min``: probability the judge put on the two answer tokens;
        ``low_mass_fraction``: judgements with less than half their mass on them.
    """
    p_ij, p_ji = np.asarray(p_ij, float), np.asarray(p_ji, float)
    mass = np.concatenate([np.asarray(mass_ij, float), np.asarray(mass_ji, float)])
    pa = np.concatenate([p_ij, p_ji])
    if len(p_ij) == 0:
        return {"n_pairs": 0, "n_judgements": 0}
    return {
        "n_pairs": int(len(p_ij)),
        "n_judgements": int(len(pa)),
        "p_first_mean": float(pa.mean()),
        "position_bias": float(pa.mean() - 0.5),
        "order_consistency": float(np.mean((p_ij > 0.5) == (p_ji < 0.5))),
        "answer_mass_mean": float(mass.mean()),
        "answer_mass_min": float(mass.min()),
        "low_mass_fraction": float(np.mean(mass < 0.5)),
    }


def summary_warnings(summary: dict) -> List[str]:
    """Plain-language warnings for a judge that is not answering, or is mostly answering by position."""
    out = []
    if summary.get("n_judgements"):
        if summary["answer_mass_mean"] < 0.5:
            out.append(
                f"the judge put on average only {summary['answer_mass_mean']:.2f} of its next-token probability "
                f"on the two answer tokens: it is mostly not answering with the labels; check the template/model"
            )
        if abs(summary["position_bias"]) > 0.25:
            side = "first" if summary["position_bias"] > 0 else "second"
            low = (f" (which is why order consistency is {summary['order_consistency']:.2f})"
                   if summary.get("order_consistency", 1.0) < 0.5 else "")
            out.append(
                f"strong position bias: the judge picks the {side} item with mean probability "
                f"{max(summary['p_first_mean'], 1 - summary['p_first_mean']):.2f}{low}; "
                f"both orders are combined to cancel it"
            )
    return out


def summary_line(summary: dict) -> str:
    """The judge's figures in one line, each with what it means.

    Parameters
    ----------
    summary : dict
        From :func:`judge_summary` (or :func:`judge_pairs`).

    Returns
    -------
    str
        Empty when nothing was judged.
    """
    if not summary.get("n_judgements"):
        return ""
    return (f"judge: position bias {summary['position_bias']:+.3f} (mean p(first shown wins) - 0.5; 0 = none), "
            f"order consistency {summary['order_consistency']:.2f} (share of pairs with the same winner in both "
            f"orders), answer-token mass {summary['answer_mass_mean']:.2f} (mean probability on the two answer labels)")


def reuse_phrase(summary: dict) -> str:
    """Where the prompts not judged now came from: ``"120 reused: 100 from the judgements file, 20 from the cache"``."""
    n = summary.get("n_reused", 0)
    if "n_from_cache" not in summary:
        return f"{n} reused from an earlier run"
    where = f"{summary['n_from_log']} from the judgements file"
    if summary.get("cache"):
        where += f", {summary['n_from_cache']} from the judgement cache"
    else:
        where += ", judgement cache off"
    return f"{n} reused: {where}"


@dataclass
class PromptSettings:
    """The non-item parts of a prompt: attribute, noun and context name."""

    attribute: str = "better"
    noun: str = "text"
    context_noun: str = "Context"

    def as_dict(self) -> dict:
        return {"attribute": self.attribute, "noun": self.noun, "context_noun": self.context_noun}


@dataclass
class JudgeResult:
    """What :func:`judge_pairs` returns.

    Attributes
    ----------
    comparisons : pandas.DataFrame
        One row per unordered pair: ``a``, ``b`` (item ids, as strings), ``group``
        (only when groups were given), ``p``
        (combined probability that a beats b), ``p_ab`` (p(A) with a shown first),
        ``p_ba`` (p(A) with b shown first), ``mass_ab``, ``mass_ba`` (probability
        on the answer tokens), ``i``, ``j`` (item indices). ``pycomp solve`` reads
        the ``a``, ``b``, ``p`` columns directly.
    summary : dict
        :func:`judge_summary` plus ``n_prompts`` (distinct prompts), ``n_judged``
        (judged by this run), ``n_from_log`` (found in the judgements file),
        ``n_from_cache`` (found in the judgement cache), ``n_reused`` (the two
        together), ``cache`` (its folder, or None), ``seconds`` and
        ``judgements_per_second`` (this run).
    """

    comparisons: pd.DataFrame
    summary: dict = field(default_factory=dict)


def _prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:24]


class JudgementLog:
    """An append-only JSONL file of judgements with a header naming format, model and template."""

    def __init__(self, path, header: dict):
        self.path = Path(path)
        self.header = dict(header)
        self.format = self.header.get("format", FORMAT)

    def _check_header(self, found: dict) -> None:
        if found.get("format") != self.format:
            raise JudgementsMismatchError(
                f"{self.path}: first line is not a {self.format!r} header (format={found.get('format')!r}); "
                f"choose another output path"
            )
        for part in ("model", "template", "prompt"):
            if found.get(part) != self.header.get(part):
                raise JudgementsMismatchError(
                    f"{self.path} holds judgements made with a different {part}:\n"
                    f"  in the file: {json.dumps(found.get(part), sort_keys=True)}\n"
                    f"  this run:    {json.dumps(self.header.get(part), sort_keys=True)}\n"
                    f"Refusing to mix them: write to another output path, or delete the file to start over."
                )

    def load(self) -> Dict[str, dict]:
        """Read the finished judgements (key -> record), creating the file with its header if new.

        A partial last line (a run killed mid-write) is cut off.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists() or self.path.stat().st_size == 0:
            with open(self.path, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(self.header, sort_keys=True) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            return {}
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # killed in the middle of a line: drop the partial line
            with open(self.path, "r+b") as handle:
                handle.truncate(end)
            data = data[:end]
        lines = data.decode("utf-8").splitlines()
        if not lines:
            raise JudgementsMismatchError(f"{self.path}: has no header line; delete it or choose another path")
        try:
            header = json.loads(lines[0])
        except ValueError:
            raise JudgementsMismatchError(f"{self.path}: line 1 is not JSON; not a pycomp judgements file") from None
        self._check_header(header)
        done = {}
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                done[rec["key"]] = rec
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{self.path}: line {number} is not a judgement record: {line[:80]!r}") from None
        return done

    def append(self, records: Sequence[dict]) -> None:
        """Append records, flushed and fsynced (one write per call)."""
        if not records:
            return
        text = "".join(json.dumps(r) + "\n" for r in records)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def _progress_bar(total: int, enabled: bool, unit: str = "cmp", desc: str = "judging"):
    if not enabled or total == 0:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def build_prompts(backend: JudgeBackend, template: PairTemplate, texts: Sequence[str], pairs: np.ndarray,
                  settings: PromptSettings, contexts: Optional[Sequence[Optional[str]]] = None) -> List[str]:
    """Rendered prompts for every ordered judgement: pair k gives prompts 2k (i first) and 2k+1 (j first)."""
    prefix = template.render_prefix(attribute=settings.attribute, noun=settings.noun,
                                    context_noun=settings.context_noun)
    prompts = []
    for i, j in pairs:
        ctx = None
        if contexts is not None:
            ctx = contexts[i]
        for a, b in ((i, j), (j, i)):
            user = template.render(texts[a], texts[b], attribute=settings.attribute, noun=settings.noun,
                                   context=ctx, context_noun=settings.context_noun)
            prompts.append(backend.render(user, system=template.system, answer_prefix=prefix))
    return prompts


def order_batches(todo, prompts, first_items, pairs, contexts, batch_size: int, sort_key) -> List[List[int]]:
    """Group the prompts still to judge into batches that share long token prefixes.

    Prompts are ordered by context (the article), then by the item shown first,
    then longest first. A batch is cut when it is full, or when the first item
    changes and the batch is at least half full: then every prompt of a batch
    shares the context *and* the first item's text, which the backend runs once
    (``share_prefix``), while small groups (few comparisons per item) are still
    packed together.

    Returns
    -------
    list of list of int
        Prompt indices, batch by batch.
    """
    context_rank: Dict[str, int] = {}
    if contexts is not None:
        for i in pairs[:, 0]:
            context_rank.setdefault(contexts[i], len(context_rank))

    def group(k: int):
        ctx = context_rank[contexts[pairs[k // 2, 0]]] if contexts is not None else 0
        return (ctx, int(first_items[k]))

    ordered = sorted(todo, key=lambda k: (group(k), -sort_key(prompts[k])))
    batches: List[List[int]] = []
    current: List[int] = []
    for k in ordered:
        if current and (len(current) >= batch_size
                        or (group(k) != group(current[-1]) and 2 * len(current) >= batch_size)):
            batches.append(current)
            current = []
        current.append(k)
    if current:
        batches.append(current)
    return batches


@dataclass
class PromptRun:
    """What :func:`run_prompts` returns.

    Attributes
    ----------
    done : dict
        Prompt key -> record, for every prompt of the run (and any other record of the file).
    n_prompts : int
        Distinct prompts of the run.
    n_from_log, n_from_cache, n_judged : int
        Of those: found in the judgements file, found in the cache, judged now.
    seconds : float
        Time spent judging (and reading the cache).
    """

    done: Dict[str, dict]
    n_prompts: int
    n_from_log: int
    n_from_cache: int
    n_judged: int
    seconds: float

    def summary(self, cache=None) -> dict:
        """The counts and the rate, as the run summary records them."""
        return {
            "n_prompts": int(self.n_prompts),
            "n_judged": int(self.n_judged),
            "n_reused": int(self.n_from_log + self.n_from_cache),
            "n_from_log": int(self.n_from_log),
            "n_from_cache": int(self.n_from_cache),
            "cache": str(cache.folder) if cache is not None else None,
            "seconds": round(self.seconds, 3),
            "judgements_per_second": (round(self.n_judged / self.seconds, 3)
                                      if self.n_judged and self.seconds > 0 else None),
        }


def run_prompts(
    backend: JudgeBackend,
    prompts: Sequence[str],
    keys: Sequence[str],
    log: JudgementLog,
    make_records: Callable[[Sequence[int], LabelScores], List[dict]],
    record_logp: Callable[[dict], Sequence[float]],
    *,
    batches: Callable[[List[int]], List[List[int]]],
    too_long: Callable[[int, PromptTooLongError], Exception],
    describe: Optional[Callable[[int], str]] = None,
    cache=None,
    progress: bool = True,
    unit: str = "cmp",
    on_batch: Optional[Callable[[int, int], None]] = None,
) -> PromptRun:
    """Judge every prompt not yet in ``log`` nor in ``cache``, appending the records to ``log`` as they finish.

    Parameters
    ----------
    backend : JudgeBackend
    prompts : sequence of str
        Rendered prompts (repeats are judged once).
    keys : sequence of str
        Each prompt's key in the log (:func:`_prompt_key`).
    log : JudgementLog
    make_records : callable(indices, scores) -> list of dict
        The log records of prompts ``indices`` given their :class:`LabelScores`
        (each record has ``"key"``).
    record_logp : callable(record) -> sequence of float
        The label log-probabilities a log record holds (to fill the cache from
        files written without it).
    batches : callable(indices) -> list of list of int
        Splits the prompts to judge into batches.
    too_long : callable(index, PromptTooLongError) -> Exception
        The error to raise for an over-long prompt (naming its items).
    describe : callable(index) -> str, optional
        What prompt ``index`` judges (e.g. "comparing item 'a' with 'b'"), added to
        the message of a request that failed for good at an endpoint.
    cache : pycomp.judge.cache.JudgementCache, optional
    progress : bool
    unit : str
        Unit of the progress bar.
    on_batch : callable(done, total), optional
        Called after each batch is written.

    Returns
    -------
    PromptRun
    """
    from pycomp.judge.cache import prompt_digest

    done = log.load()
    first: Dict[str, int] = {}
    for k, key in enumerate(keys):
        first.setdefault(key, k)
    todo = [k for key, k in first.items() if key not in done]
    n_from_log = len(first) - len(todo)
    n_labels = len(backend.labels)
    fingerprint = backend.fingerprint() if cache is not None else None

    start = time.perf_counter()
    n_from_cache = 0
    if cache is not None:
        # judgements made without this cache (--no-cache, another --cache-dir, before it existed) fill it
        logged = []
        for key, k in first.items():
            if key in done and "cached" not in done[key]:
                try:
                    logged.append((prompt_digest(prompts[k]), [float(x) for x in record_logp(done[key])]))
                except (KeyError, TypeError, ValueError):
                    continue  # a record without label log-probabilities: nothing to cache
        cache.put(fingerprint, logged, labels=backend.labels)
        digests = {k: prompt_digest(prompts[k]) for k in todo}
        hits = cache.get(fingerprint, n_labels, list(digests.values()))
        found = [k for k in todo if digests[k] in hits]
        for s in range(0, len(found), 10000):
            part = found[s:s + 10000]
            scores = LabelScores(logp=np.stack([hits[digests[k]] for k in part]))
            records = make_records(part, scores)
            for rec in records:
                rec["cached"] = True
                done[rec["key"]] = rec
            log.append(records)
        n_from_cache = len(found)
        todo = [k for k in todo if digests[k] not in hits]

    plan = batches(todo)
    n_todo = len(todo)
    bar = _progress_bar(n_todo, progress, unit=unit)
    n_done = 0
    try:
        for batch in plan:
            try:
                scores = backend.label_logprobs([prompts[k] for k in batch])
            except PromptTooLongError as exc:
                raise too_long(batch[exc.index], exc) from None
            except Exception as exc:
                raise _with_item(exc, batch, describe) from None
            records = make_records(batch, scores)
            for rec in records:
                if cache is not None:
                    rec["cached"] = False  # judged now, and put into the cache right after the log
                done[rec["key"]] = rec
            log.append(records)
            if cache is not None:
                cache.put(fingerprint, [(digests[k], scores.logp[t]) for t, k in enumerate(batch)],
                          labels=backend.labels)
            n_done += len(batch)
            if bar is not None:
                bar.update(len(batch))
            if on_batch is not None:
                on_batch(n_done, n_todo)
    finally:
        if bar is not None:
            bar.close()
    return PromptRun(done=done, n_prompts=len(first), n_from_log=n_from_log, n_from_cache=n_from_cache,
                     n_judged=n_done, seconds=time.perf_counter() - start)


def _with_item(exc: Exception, batch: Sequence[int], describe: Optional[Callable[[int], str]]) -> Exception:
    """``exc`` itself, or an endpoint failure restated with the item its prompt judges."""
    from pycomp.judge.http import EndpointError

    index = getattr(exc, "index", None)
    if describe is None or not isinstance(exc, EndpointError) or not isinstance(index, int):
        return exc
    if not 0 <= index < len(batch):
        return exc
    return EndpointError(f"{exc} ({describe(batch[index])})", url=exc.url, model=exc.model, index=index,
                         status=exc.status)


def judge_pairs(
    backend: JudgeBackend,
    template: PairTemplate,
    texts: Sequence[str],
    pairs,
    *,
    out,
    ids: Optional[Sequence] = None,
    groups: Optional[Sequence] = None,
    contexts: Optional[Sequence[Optional[str]]] = None,
    settings: Optional[PromptSettings] = None,
    batch_size: int = 16,
    progress: bool = True,
    on_batch: Optional[Callable[[int, int], None]] = None,
    cache=None,
) -> JudgeResult:
    """Judge every pair in both orders, resumably, and combine the two orders.

    Parameters
    ----------
    backend : JudgeBackend
    template : PairTemplate
    texts : sequence of str, length n_items
    pairs : array-like, int, shape (m, 2)
        Unordered pairs of item indices (see :mod:`pycomp.plan`).
    out : path
        The judgements JSONL file; created, or resumed when it exists.
    ids : sequence, optional
        Item ids (default ``0..n-1``); stored in the file.
    groups : sequence, optional
        Group of each item, when ids are unique only within a group; stored in
        the file and in the comparisons beside the ids.
    contexts : sequence of str, optional
        Per-item context (e.g. the article). A pair uses the context of its first item,
        so plan pairs within groups that share a context.
    settings : PromptSettings
    batch_size : int
        Prompts per forward pass. Batches are grouped by context and by the item
        shown first, longest first (see :func:`order_batches`), so they pad little
        and share long token prefixes.
    progress : bool
        Show a progress bar with comparisons per second.
    on_batch : callable(done, total), optional
        Called after each batch is written (tests use it to interrupt a run).
    cache : pycomp.judge.cache.JudgementCache, optional
        Prompts judged by any earlier run with the same backend are taken from
        it; prompts judged now are added to it.

    Returns
    -------
    JudgeResult

    Raises
    ------
    JudgementsMismatchError
        If ``out`` was written with another model, template or prompt settings.
    ValueError
        For out-of-range pairs, self-pairs, or a prompt longer than the model's context.
    """
    settings = settings or PromptSettings()
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    n = len(texts)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs):
        bad = np.flatnonzero((pairs < 0).any(axis=1) | (pairs >= n).any(axis=1))
        if len(bad):
            raise ValueError(f"pairs[{bad[0]}] = {pairs[bad[0]].tolist()} is outside [0, n_items={n})")
        self_pairs = np.flatnonzero(pairs[:, 0] == pairs[:, 1])
        if len(self_pairs):
            raise ValueError(f"pairs[{self_pairs[0]}] compares item {pairs[self_pairs[0], 0]} with itself")
    ids = [str(x) for x in (ids if ids is not None else range(n))]
    if len(ids) != n:
        raise ValueError(f"ids has {len(ids)} entries for {n} items")
    if groups is not None:
        groups = [str(g) for g in groups]
        if len(groups) != n:
            raise ValueError(f"groups has {len(groups)} entries for {n} items")
    if contexts is not None and not template.uses_context:
        raise ValueError(f"contexts were given but template {template.name!r} has no context placeholder")
    if len(backend.labels) != 2:
        raise ValueError(f"pairwise judging needs a backend with two answer labels, this one has "
                         f"{len(backend.labels)}: {backend.labels}")

    header = {
        "format": FORMAT,
        "model": backend.fingerprint(),
        "template": template.fingerprint(),
        "prompt": settings.as_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    log = JudgementLog(out, header)

    prompts = build_prompts(backend, template, texts, pairs, settings, contexts)
    keys = [_prompt_key(p) for p in prompts]
    order_a = np.empty(2 * len(pairs), dtype=np.int64)
    order_b = np.empty(2 * len(pairs), dtype=np.int64)
    order_a[0::2], order_b[0::2] = pairs[:, 0], pairs[:, 1]
    order_a[1::2], order_b[1::2] = pairs[:, 1], pairs[:, 0]

    def make_records(batch, scores):
        p_a, mass = scores.p_a, scores.mass
        records = []
        for t, k in enumerate(batch):
            rec = {"a": ids[order_a[k]], "b": ids[order_b[k]]}
            if groups is not None:
                rec["group"] = groups[order_a[k]]
            rec.update({
                "key": keys[k], "p_a": float(p_a[t]), "logp_a": float(scores.logp_a[t]),
                "logp_b": float(scores.logp_b[t]), "mass": float(mass[t]),
            })
            records.append(rec)
        return records

    def describe(k):
        where = f" (group {groups[order_a[k]]!r})" if groups is not None else ""
        return f"the prompt comparing item {ids[order_a[k]]!r} with {ids[order_b[k]]!r}{where}"

    def too_long(k, exc):
        return ValueError(
            f"{describe(k)} has {exc.n_tokens} tokens, more than the model's context of {exc.limit}; shorten the "
            f"items or the context"
        )

    run = run_prompts(
        backend, prompts, keys, log, make_records, lambda rec: [rec["logp_a"], rec["logp_b"]],
        batches=lambda todo: order_batches(todo, prompts, order_a, pairs, contexts, batch_size, backend.sort_key),
        too_long=too_long, describe=describe, cache=cache, progress=progress, on_batch=on_batch,
    )
    done = run.done

    rec_first = [done[keys[2 * k]] for k in range(len(pairs))]
    rec_second = [done[keys[2 * k + 1]] for k in range(len(pairs))]
    p_ij = np.array([r["p_a"] for r in rec_first], dtype=np.float64)
    p_ji = np.array([r["p_a"] for r in rec_second], dtype=np.float64)
    m_ij = np.array([r["mass"] for r in rec_first], dtype=np.float64)
    m_ji = np.array([r["mass"] for r in rec_second], dtype=np.float64)
    comparisons = pd.DataFrame({
        "a": [ids[i] for i in pairs[:, 0]], "b": [ids[j] for j in pairs[:, 1]],
        "p": combine_orders(p_ij, p_ji),
        "p_ab": p_ij, "p_ba": p_ji, "mass_ab": m_ij, "mass_ba": m_ji,
        "i": pairs[:, 0], "j": pairs[:, 1],
    })
    if groups is not None:
        comparisons.insert(2, "group", [groups[i] for i in pairs[:, 0]])
    summary = judge_summary(p_ij, p_ji, m_ij, m_ji)
    summary.update(run.summary(cache))
    summary["batch_size"] = int(batch_size)
    return JudgeResult(comparisons, summary)
