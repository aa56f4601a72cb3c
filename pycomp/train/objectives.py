"""Training objectives: each turns a model and a collated batch into ``(loss, stats)``.

* :class:`PairObjective` (``soft`` / ``hard``): soft binary cross-entropy of the
  judge's pair-token probability, :func:`pycomp.ops.pair_loss` on the
  answer-position hidden states (:func:`pycomp.ops.gather_answer_hidden`), so
  the (B, T, V) logits are never formed. ``backend="hf"`` is the plain
  Hugging Face baseline: ``model(...)`` computes every position's logits and
  the loss is taken from the last row.
* :class:`ScoreObjective` (``rail``): regression-aware squared error of the
  expected score over the score tokens (:func:`pycomp.ops.score_loss`, TRACT),
  after an optional first stage of cross-entropy on rationale tokens
  (:func:`torch.nn.functional.linear_cross_entropy`, chunked on CUDA).
* :class:`RankObjective` (``rank``, RRESCUE): hinge ranking of length-normalised
  candidate log-probabilities over the partial order given by gold scores,
  plus ``alpha`` times the cross-entropy (SFT) of the best candidate; per-token
  log-probabilities again by torch's fused linear cross-entropy.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F

from pycomp.ops import gather_answer_hidden, lm_head_weight, pair_loss, score_loss
from pycomp.ops.gather import decoder_hidden

__all__ = [
    "ops_backend",
    "sequence_hidden",
    "token_logprobs",
    "PairObjective",
    "ScoreObjective",
    "RankObjective",
    "pair_probabilities",
    "make_objective",
]

Stats = Dict[str, float]


def ops_backend(loss_backend: str, device: torch.device) -> str:
    """The :mod:`pycomp.ops` backend for a ``loss_backend`` setting on ``device``.

    ``"auto"`` is the fused Triton kernel on CUDA and the torch reference on
    CPU: the Triton interpreter runs on CPU but is far too slow for training,
    so it is only used when asked for (``"triton"`` with ``TRITON_INTERPRET=1``).
    """
    if loss_backend == "auto":
        return "auto" if torch.device(device).type == "cuda" else "torch"
    return loss_backend


def sequence_hidden(model, batch: dict) -> Tuple[torch.Tensor, torch.Tensor]:
    """Final-norm hidden states of every position (B, T, d) and the LM head weight (V, d).

    Runs the decoder only (:func:`pycomp.ops.gather.decoder_hidden`, through a
    PEFT wrapper, adapters active), so no (B, T, V) logits are formed.
    """
    last = decoder_hidden(model, batch["input_ids"], batch["attention_mask"], position_ids=batch.get("position_ids"))
    return last, lm_head_weight(model)


def token_logprobs(hidden: torch.Tensor, weight: torch.Tensor,
                   labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of the labelled next tokens, by torch's fused linear cross-entropy.

    :func:`torch.nn.functional.linear_cross_entropy` with chunking on CUDA
    (the (N, V) logits are never formed), its reference path on CPU.

    Parameters
    ----------
    hidden : torch.Tensor
        (B, T, d) hidden states.
    weight : torch.Tensor
        (V, d) LM head.
    labels : torch.Tensor
        (B, T) token ids to score at their own position (predicted from the
        previous position), -100 where nothing is scored.

    Returns
    -------
    logp : torch.Tensor
        (N,) float32 log-probabilities of the N scored tokens.
    rows : torch.Tensor
        (N,) int64: the batch row of each scored token.
    """
    target = labels[:, 1:]
    keep = target != -100
    rows = torch.nonzero(keep, as_tuple=True)[0]
    h = hidden[:, :-1][keep].to(weight.dtype)
    # The chunked path never forms the (N, V) logits; on CPU it is ~5x slower than the
    # reference path (measured: 700 tokens x 49k vocabulary, 16 s vs 3.4 s), so it is used on GPUs only.
    options = torch.nn.LinearCrossEntropyOptions() if h.is_cuda else None
    nll = F.linear_cross_entropy(h, weight, target[keep], reduction="none", options=options)
    return -nll.float(), rows


def _mean_per_row(values: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    sums = torch.zeros(n_rows, dtype=values.dtype, device=values.device).index_add(0, rows, values)
    counts = torch.bincount(rows, minlength=n_rows).clamp(min=1).to(values.dtype)
    return sums / counts


def pair_probabilities(hidden: torch.Tensor, weight: torch.Tensor, a_id: int, b_id: int) -> torch.Tensor:
    """p(A) = sig(z_A - z_B) from answer-position hidden states (no grad), float32 (B,)."""
    with torch.no_grad():
        z = hidden.float() @ weight[[a_id, b_id]].float().T
        return torch.sigmoid(z[:, 0] - z[:, 1])


class PairObjective:
    """Pair soft-BCE (``soft``; ``hard`` is the same loss on 0 / 0.5 / 1 targets).

    Parameters
    ----------
    a_id, b_id : int
        Token ids of the two answers.
    normalize : {"pair", "vocab"}
    backend : {"auto", "triton", "torch", "hf"}
        See :func:`ops_backend`; ``"hf"`` computes the full logits.
    """

    name = "pair"

    def __init__(self, a_id: int, b_id: int, normalize: str = "pair", backend: str = "auto"):
        self.a_id, self.b_id = int(a_id), int(b_id)
        self.normalize = normalize
        self.backend = backend

    def hidden(self, model, batch) -> Tuple[torch.Tensor, torch.Tensor]:
        hidden, weight = gather_answer_hidden(model, batch["input_ids"], batch["attention_mask"],
                                              position_ids=batch["position_ids"])
        return hidden.to(weight.dtype), weight

    def _hf_rows(self, model, batch, target) -> Tuple[torch.Tensor, torch.Tensor]:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    position_ids=batch["position_ids"], use_cache=False)
        logits = out.logits[:, -1, :].float()  # (B, T, V) computed; the answer row is the last (left padding)
        if self.normalize == "vocab":
            logp = torch.log_softmax(logits, dim=-1)
            rows = -(target * logp[:, self.a_id] + (1 - target) * logp[:, self.b_id])
        else:
            delta = logits[:, self.a_id] - logits[:, self.b_id]
            rows = target * F.softplus(-delta) + (1 - target) * F.softplus(delta)
        p = torch.sigmoid((logits[:, self.a_id] - logits[:, self.b_id]).detach())
        return rows, p

    def __call__(self, model, batch: dict, step: int = 0) -> Tuple[torch.Tensor, Stats]:
        target = batch["target"].float()
        if self.backend == "hf":
            rows, p = self._hf_rows(model, batch, target)
        else:
            hidden, weight = self.hidden(model, batch)
            rows = pair_loss(hidden, weight, self.a_id, self.b_id, target, normalize=self.normalize,
                             reduction="none", backend=ops_backend(self.backend, hidden.device))
            p = pair_probabilities(hidden, weight, self.a_id, self.b_id)
        loss = rows.mean()
        decided = target != 0.5
        stats = {"p_error": float((p - target).abs().mean())}
        if bool(decided.any()):
            stats["pair_accuracy"] = float(((p[decided] > 0.5) == (target[decided] > 0.5)).float().mean())
        return loss, stats


class ScoreObjective:
    """Regression-aware score loss (``rail``), after an optional rationale cross-entropy stage.

    Parameters
    ----------
    score_ids : sequence of int
        Token ids of the score digits.
    score_values : sequence of float
        Their values.
    normalize : {"vocab", "scores"}
    backend : {"auto", "triton", "torch", "hf"}
    rationale_steps : int
        Optimizer steps (from the start) that train the cross-entropy of the
        rationale tokens instead; batches without ``labels`` skip that stage.
    """

    name = "rail"

    def __init__(self, score_ids: Sequence[int], score_values: Sequence[float], normalize: str = "vocab",
                 backend: str = "auto", rationale_steps: int = 0):
        self.score_ids = [int(i) for i in score_ids]
        self.score_values = [float(v) for v in score_values]
        self.normalize = normalize
        self.backend = backend
        self.rationale_steps = int(rationale_steps)

    def expected_score(self, hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``y_hat = sum_k v_k P(s_k)`` (no grad), float32 (B,)."""
        with torch.no_grad():
            if self.normalize == "scores":
                p = torch.softmax(hidden.float() @ weight[self.score_ids].float().T, dim=-1)
            else:
                logits = hidden.float() @ weight.float().T
                p = torch.softmax(logits, dim=-1)[:, self.score_ids]
            return p @ torch.tensor(self.score_values, device=hidden.device)

    def __call__(self, model, batch: dict, step: int = 0) -> Tuple[torch.Tensor, Stats]:
        target = batch["target"].float()
        if "labels" in batch and step < self.rationale_steps:
            hidden, weight = sequence_hidden(model, batch)
            logp, _ = token_logprobs(hidden, weight, batch["labels"])
            loss = -logp.mean()
            return loss, {"rationale_ce": float(loss.detach())}
        if self.backend == "hf":
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        position_ids=batch["position_ids"], use_cache=False)
            logits = out.logits[:, -1, :].float()
            if self.normalize == "scores":
                p = torch.softmax(logits[:, self.score_ids], dim=-1)
            else:
                p = torch.softmax(logits, dim=-1)[:, self.score_ids]
            y_hat = p @ torch.tensor(self.score_values, device=p.device)
            loss = ((y_hat - target) ** 2).mean()
            y_hat = y_hat.detach()
        else:
            hidden, weight = gather_answer_hidden(model, batch["input_ids"], batch["attention_mask"],
                                                  position_ids=batch["position_ids"])
            hidden = hidden.to(weight.dtype)
            loss = score_loss(hidden, weight, self.score_ids, self.score_values, target,
                              normalize=self.normalize, backend=ops_backend(self.backend, hidden.device))
            y_hat = self.expected_score(hidden, weight)
        return loss, {"score_abs_error": float((y_hat - target).abs().mean())}


class RankObjective:
    """RRESCUE: ranking hinge on length-normalised log-probabilities plus ``alpha`` x SFT on the best.

    For the candidates ``c`` of one set with gold scores ``y_c`` and
    length-normalised log-probabilities ``r_c = mean_t log p(c_t | c_<t, prompt)``:
    ``L_rank = mean_{y_i > y_j} max(0, margin - (r_i - r_j))`` and
    ``L_sft = -r_best`` (the best candidate's mean token cross-entropy);
    ``loss = mean over sets (L_rank + alpha * L_sft)``.

    Parameters
    ----------
    alpha : float
        Weight of the SFT term.
    margin : float
        Hinge margin (0: only wrongly ordered pairs are penalised).
    """

    name = "rank"

    def __init__(self, alpha: float = 1.0, margin: float = 0.0):
        self.alpha = float(alpha)
        self.margin = float(margin)

    def scores(self, model, batch: dict) -> torch.Tensor:
        """Length-normalised log-probability of each candidate (N,), differentiable."""
        hidden, weight = sequence_hidden(model, batch)
        logp, rows = token_logprobs(hidden, weight, batch["labels"])
        return _mean_per_row(logp, rows, batch["input_ids"].shape[0])

    def __call__(self, model, batch: dict, step: int = 0) -> Tuple[torch.Tensor, Stats]:
        r = self.scores(model, batch)
        sets, gold = batch["set_index"], batch["scores"].float()
        losses, correct, counted = [], 0.0, 0
        for s in torch.unique(sets):
            idx = torch.nonzero(sets == s, as_tuple=True)[0]
            rs, ys = r[idx], gold[idx]
            better = ys[:, None] > ys[None, :]  # (i, j): i should rank above j
            diff = rs[:, None] - rs[None, :]
            hinge = F.relu(self.margin - diff)[better]
            rank_loss = hinge.mean() if hinge.numel() else rs.sum() * 0
            sft = -rs[torch.argmax(ys)]
            losses.append(rank_loss + self.alpha * sft)
            correct += float((diff.detach()[better] > 0).float().sum())
            counted += int(better.sum())
        loss = torch.stack(losses).mean()
        stats = {"rank_accuracy": correct / counted if counted else float("nan"),
                 "mean_token_logprob": float(r.detach().mean())}
        return loss, stats


def make_objective(config, answer=None, rationale_steps: int = 0):
    """The objective of a :class:`~pycomp.train.config.JudgeTrainingConfig`.

    Parameters
    ----------
    config : JudgeTrainingConfig
    answer : pycomp.train.collator.AnswerTokens, optional
        The answer (pair) or score tokens; not needed for ``rank``.
    rationale_steps : int
        ``rail``: steps of the rationale cross-entropy stage.
    """
    if config.objective in ("soft", "hard"):
        return PairObjective(answer.ids[0], answer.ids[1], normalize=config.normalize, backend=config.loss_backend)
    if config.objective == "rail":
        return ScoreObjective(answer.ids, [float(x) for x in answer.labels], normalize=config.score_normalize,
                              backend=config.loss_backend, rationale_steps=rationale_steps)
    if config.objective == "rank":
        return RankObjective(alpha=config.rank_alpha, margin=config.rank_margin)
    raise ValueError(f"unknown objective {config.objective!r}")
