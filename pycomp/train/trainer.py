"""The judge trainer (a :class:`transformers.Trainer`) and the end-to-end :func:`train_judge`.

:class:`JudgeTrainer` only overrides ``compute_loss`` (the objective of
:mod:`pycomp.train.objectives`), ``prediction_step`` (evaluation loss of the
same objective) and ``log`` (objective statistics averaged since the last log,
as TRL's trainers do): the training loop, optimiser, schedule, gradient
accumulation, gradient checkpointing, checkpoints and resume are the Trainer's.
``model_accepts_loss_kwargs`` and ``loss_is_scaled_for_ga`` are off, so the
Trainer divides the per-batch mean loss by the accumulation steps itself.

:func:`train_judge` reads and checks the items, splits off held-out groups,
renders the training prompts with the judge's own prompt code, loads the base
model (4-bit on CUDA, fp32 on CPU) with LoRA adapters, trains, and writes the
adapter folder that ``pycomp rank --adapter DIR`` loads, with
``pycomp-train.json`` (every setting, the answer tokens, the split, the losses
and timings) and ``train_log.jsonl`` (one line per log step, written as it goes).
"""
from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Union

import numpy as np
import torch
from transformers import Trainer, TrainerCallback

from pycomp.train.collator import AnswerTokens, PairCollator, PromptBuilder, RankCollator
from pycomp.train.config import JudgeTrainingConfig
from pycomp.train.data import (
    TrainingDataError,
    check_gold,
    pair_examples,
    point_examples,
    rank_examples,
    split_groups,
)
from pycomp.train.objectives import make_objective

__all__ = ["JudgeTrainer", "JsonlLogCallback", "PreparedRun", "prepare_training", "train_judge",
           "expected_scores", "SUMMARY_FILE", "LOG_FILE"]

SUMMARY_FILE = "pycomp-train.json"
LOG_FILE = "train_log.jsonl"
_FINGERPRINT_FILE = "pycomp-train-settings.json"


class JudgeTrainer(Trainer):
    """A :class:`transformers.Trainer` whose loss is a pycomp objective.

    Parameters
    ----------
    model : peft.PeftModel or transformers.PreTrainedModel
    args : JudgeTrainingConfig
    objective : callable
        ``objective(model, batch, step) -> (loss, stats)`` (see
        :mod:`pycomp.train.objectives`).
    train_dataset, eval_dataset : sequence of dict, optional
    data_collator : callable
    processing_class : tokenizer, optional
        Saved with checkpoints.
    callbacks : list of TrainerCallback, optional
    """

    def __init__(self, model, args: JudgeTrainingConfig, objective: Callable, train_dataset=None,
                 eval_dataset=None, data_collator=None, processing_class=None, callbacks=None):
        super().__init__(model=model, args=args, data_collator=data_collator, train_dataset=train_dataset,
                         eval_dataset=eval_dataset, processing_class=processing_class, callbacks=callbacks)
        self.objective = objective
        # The objective returns a per-batch mean: let the Trainer scale it for gradient accumulation.
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}

    def compute_loss(self, model, inputs, return_outputs: bool = False, num_items_in_batch=None):
        """The objective's loss on one batch; its statistics are kept for :meth:`log`."""
        loss, stats = self.objective(model, inputs, step=self.state.global_step)
        mode = "train" if model.training else "eval"
        for key, value in stats.items():
            if value is not None and math.isfinite(value):
                self._metrics[mode][key].append(float(value))
        return (loss, {"loss": loss.detach()}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only: bool, ignore_keys=None):
        """Evaluation: the objective's loss only (no logits are gathered)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: dict, start_time: Optional[float] = None) -> None:
        """Add the objective statistics (means since the last log) to the Trainer's log line."""
        mode = "eval" if any(str(k).startswith("eval_") for k in logs) else "train"
        extra = {k: sum(v) / len(v) for k, v in self._metrics[mode].items() if v}
        if mode == "eval":
            extra = {f"eval_{k}": v for k, v in extra.items()}
        self._metrics[mode].clear()
        super().log({**logs, **extra}, start_time)


class JsonlLogCallback(TrainerCallback):
    """Append every log record (step, epoch, wall time and the logged values) to a JSONL file."""

    def __init__(self, path: Union[str, os.PathLike]):
        self.path = Path(path)
        self.start = time.time()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        rec = {"step": int(state.global_step), "epoch": state.epoch, "seconds": round(time.time() - self.start, 2)}
        rec.update({k: (float(v) if isinstance(v, (int, float)) else str(v)) for k, v in logs.items()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(rec) + "\n")


@dataclass
class PreparedRun:
    """Everything :func:`train_judge` builds before training (tests and benchmarks use it directly).

    Attributes
    ----------
    config : JudgeTrainingConfig
    model : peft.PeftModel
        The base model with LoRA adapters.
    tokenizer
    info : dict
        The base model's load info.
    builder : PromptBuilder
        Renders prompts as the judge does.
    answer : AnswerTokens or None
        Pair or score tokens (``None`` for ``rank``).
    train_dataset, eval_dataset : list of dict
    collator : callable
    objective : callable
    meta : dict
        Data facts recorded in ``pycomp-train.json``.
    """

    config: JudgeTrainingConfig
    model: Any
    tokenizer: Any
    info: dict
    builder: PromptBuilder
    answer: Optional[AnswerTokens]
    train_dataset: list
    eval_dataset: list
    collator: Any
    objective: Any
    meta: dict = field(default_factory=dict)

    def trainer(self, callbacks: Optional[list] = None) -> JudgeTrainer:
        """A :class:`JudgeTrainer` over this run's model, data and objective."""
        return JudgeTrainer(self.model, self.config, self.objective, train_dataset=self.train_dataset,
                            eval_dataset=self.eval_dataset or None, data_collator=self.collator,
                            processing_class=self.tokenizer, callbacks=callbacks)


def _load_items(source, config: JudgeTrainingConfig):
    import pandas as pd

    from pycomp.config import RankConfig
    from pycomp.items import load_items, validate_items

    if config.gold_field is None:
        raise TrainingDataError("training needs gold scores: give --gold-field (the field with each item's score)")
    rc = RankConfig(text_field=config.text_field, attribute=config.attribute, noun=config.noun,
                    context_field=config.context_field, context_noun=config.context_noun,
                    group_field=config.group_field, id_field=config.id_field, gold_field=config.gold_field,
                    template=config.template, system=config.system, labels=config.label_pair)
    if isinstance(source, pd.DataFrame):
        return validate_items(source, rc, source="the items"), rc
    return load_items(str(source), rc)


def _total_steps(config: JudgeTrainingConfig, n_train: int) -> int:
    if config.max_steps and config.max_steps > 0:
        return int(config.max_steps)
    per_step = config.per_device_train_batch_size * config.gradient_accumulation_steps
    return int(math.ceil(n_train / per_step) * math.ceil(config.num_train_epochs))


def prepare_training(source, config: JudgeTrainingConfig, *, base=None,
                     echo: Callable[[str], None] = print) -> PreparedRun:
    """Read the items, build the datasets and the objective, load the model with LoRA adapters.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        Items file (JSONL, CSV, TSV, Parquet), ``example:NAME``, or a table.
    config : JudgeTrainingConfig
    base : (model, tokenizer, info), optional
        An already loaded base model (it gets the adapters injected in place);
        loaded from ``config.model_name`` when omitted.
    echo : callable
        Where progress lines go.

    Returns
    -------
    PreparedRun

    Raises
    ------
    TrainingDataError
        Gold scores missing or constant, a group with one item, a bad split or
        setting, a template that does not match the context field.
    """
    from pycomp.judge.prompts import load_template
    from pycomp.judge.run import PromptSettings
    from pycomp.judge.transformers_backend import TransformersBackend
    from pycomp.train.model import add_lora, load_base_model

    items, _ = _load_items(source, config)
    pairwise = config.objective != "rail"
    gold = check_gold(items.gold, items.groups, ids=items.ids if config.id_field else None,
                      gold_field=config.gold_field, group_field=config.group_field or "group", pairwise=pairwise)
    groups = items.groups
    if config.holdout > 0 or config.holdout_group_list:
        labels = groups if groups is not None else np.asarray(items.ids, dtype=object)
        heldout, held_names = split_groups(labels, holdout=config.holdout,
                                           holdout_groups=config.holdout_group_list, seed=config.seed)
    else:
        heldout, held_names = np.zeros(len(items), dtype=bool), []
    train_idx, eval_idx = np.flatnonzero(~heldout), np.flatnonzero(heldout)
    if float(np.ptp(gold[train_idx])) == 0.0:
        raise TrainingDataError(f"the gold scores of the training items (after the held-out split) are all "
                                f"{gold[train_idx][0]:g}: nothing to learn")
    template = load_template(config.template, system=config.system, labels=config.label_pair)
    if items.contexts is not None and not template.uses_context:
        raise TrainingDataError(f"--context-field {config.context_field!r} was given but template "
                                f"{template.name!r} has no context placeholder")

    if base is None:
        echo(f"loading base model {config.model_name or 'smollm2-135m'} ...")
        base = load_base_model(config.model_name, device=config.model_device, quantization=config.quantization,
                               gradient_checkpointing=bool(config.activation_checkpointing))
    model, tokenizer, info = base
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    backend = TransformersBackend(model, tokenizer, info, labels=config.label_pair)
    settings = PromptSettings(attribute=config.attribute, noun=config.noun, context_noun=config.context_noun)
    builder = PromptBuilder(backend, template, settings, max_length=config.max_length)

    def subset(idx):
        texts = [items.texts[i] for i in idx]
        ctx = [items.contexts[i] for i in idx] if items.contexts is not None else None
        grp = groups[idx] if groups is not None else None
        return texts, ctx, grp, gold[idx]

    meta = {"n_items": len(items), "n_train_items": int(len(train_idx)), "n_heldout_items": int(len(eval_idx)),
            "heldout_groups": held_names, "n_groups": int(len(np.unique(groups))) if groups is not None else None}
    answer = None
    datasets = []
    if config.objective in ("soft", "hard"):
        scale = float(np.std(gold[train_idx]))
        meta["gold_std"] = scale
        first_prompt = None
        for idx in (train_idx, eval_idx):
            if len(idx) == 0:
                datasets.append([])
                continue
            texts, ctx, grp, g = subset(idx)
            ex = pair_examples(g, grp, objective=config.objective, gamma=config.gamma, per_item=config.per_item,
                               all_pairs=config.all_pairs, design=config.design, seed=config.seed, scale=scale)
            prompts = builder.pair_prompts(texts, ex.pairs, ctx)
            first_prompt = first_prompt or prompts[0]
            datasets.append(builder.pair_dataset(prompts, ex.target))
            builder.dropped = 0
        answer = builder.pair_answer_tokens(first_prompt)
        meta["n_train_pairs"] = int(len(datasets[0]) // 2)
    elif config.objective == "rail":
        lo, hi = int(config.score_min), int(config.score_max)
        _, mapping = point_examples(gold[train_idx], score_min=lo, score_max=hi)
        meta["score_map"] = mapping
        rationales = None
        if config.rationale_field is not None:
            if items.frame is None or config.rationale_field not in items.frame.columns:
                raise TrainingDataError(f"--rationale-field {config.rationale_field!r} is not in the items")
            rationales = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                          for v in items.frame[config.rationale_field].tolist()]
        for idx in (train_idx, eval_idx):
            texts, ctx, _, g = subset(idx)
            target = mapping["a"] * g + mapping["b"]
            why = [rationales[i] for i in idx] if rationales is not None else None
            datasets.append(builder.point_dataset(texts, target, lo, hi, ctx, why) if len(idx) else [])
            builder.dropped = 0
        answer = builder.score_answer_tokens(lo, hi)
    else:  # rank
        for idx in (train_idx, eval_idx):
            if len(idx) == 0:
                datasets.append([])
                continue
            texts, ctx, grp, g = subset(idx)
            sets = rank_examples(g, grp, candidates=config.rank_candidates, seed=config.seed)
            datasets.append(builder.rank_dataset(texts, g, sets, ctx))
            builder.dropped = 0
    train_ds, eval_ds = datasets
    if not train_ds:
        raise TrainingDataError("no training examples are left (all prompts longer than --max-length?)")
    meta["n_train_examples"], meta["n_eval_examples"] = len(train_ds), len(eval_ds)

    rationale_steps = 0
    if config.objective == "rail" and config.rationale_field is not None:
        total = _total_steps(config, len(train_ds))
        rationale_steps = config.rationale_steps if config.rationale_steps is not None else max(1, total // 2)
        meta["rationale_steps"] = int(rationale_steps)
    objective = make_objective(config, answer, rationale_steps)
    model = add_lora(model, r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout,
                     target_modules=config.lora_target_modules, seed=config.seed)
    pad = tokenizer.pad_token_id
    collator = RankCollator(pad) if config.objective == "rank" else PairCollator(pad)
    meta["template"] = template.fingerprint()
    meta["judge"] = backend.fingerprint()
    return PreparedRun(config=config, model=model, tokenizer=tokenizer, info=info, builder=builder, answer=answer,
                       train_dataset=train_ds, eval_dataset=eval_ds, collator=collator, objective=objective,
                       meta=meta)


def _settings_fingerprint(config: JudgeTrainingConfig) -> dict:
    keep = config.pycomp_settings()
    for key in ("loss_backend", "max_steps", "num_train_epochs"):
        keep.pop(key, None)
    return json.loads(json.dumps(keep, default=str))


def _check_resume(out: Path, config: JudgeTrainingConfig, resume: bool) -> Optional[str]:
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    path = out / _FINGERPRINT_FILE
    now = _settings_fingerprint(config)
    if last is not None and resume and path.is_file():
        before = json.loads(path.read_text())
        diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if diff:
            raise TrainingDataError(
                f"{out} holds checkpoints of a run with other settings ({', '.join(diff[:6])}); resume with the "
                f"same settings, write to another --out, or pass --restart to start over"
            )
    if not resume and out.is_dir():  # start over: drop this run's old checkpoints and log
        import shutil

        for old in out.glob("checkpoint-*"):
            if old.is_dir():
                shutil.rmtree(old)
        (out / LOG_FILE).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(now, indent=1) + "\n")
    return last if resume else None


def train_judge(source, config: JudgeTrainingConfig, *, base=None, resume: bool = True,
                echo: Callable[[str], None] = print) -> dict:
    """Fine-tune a judge and write the adapter folder ``config.output_dir``.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        Items with gold scores (see :func:`prepare_training`).
    config : JudgeTrainingConfig
    base : (model, tokenizer, info), optional
        An already loaded base model.
    resume : bool
        Continue from the last checkpoint in ``output_dir`` when there is one
        (written with the same settings); ``False`` starts over (the old
        ``checkpoint-*`` folders and ``train_log.jsonl`` there are removed).
    echo : callable

    Returns
    -------
    dict
        The content of ``pycomp-train.json``.
    """
    from pycomp.report import versions, write_json

    out = Path(config.output_dir)
    t0 = time.perf_counter()
    last = _check_resume(out, config, resume)
    run = prepare_training(source, config, base=base, echo=echo)
    m = run.meta
    echo(f"{m['n_train_items']} training items ({m['n_train_examples']} examples), "
         f"{m['n_heldout_items']} held out ({m['n_eval_examples']} examples); objective {config.objective}"
         + (f", answer tokens {run.answer.ids}" if run.answer is not None else ""))
    trainer = run.trainer(callbacks=[JsonlLogCallback(out / LOG_FILE)])
    eval_before = None
    if run.eval_dataset and last is None:
        eval_before = trainer.evaluate(metric_key_prefix="eval")
    if last is not None:
        echo(f"resuming from {last}")
    t_train = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    train_seconds = time.perf_counter() - t_train
    eval_after = trainer.evaluate(metric_key_prefix="eval") if run.eval_dataset else None
    trainer.save_model(str(out))
    trainable = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
    summary = {
        "command": "train",
        "items": str(source) if not hasattr(source, "columns") else "<table>",
        "out": str(out),
        "settings": json.loads(json.dumps(config.pycomp_settings(), default=str)),
        "base_model": {k: run.info.get(k) for k in ("model", "identity", "device", "dtype", "quantization")},
        "answer_tokens": run.answer.as_dict() if run.answer is not None else None,
        "data": run.meta,
        "resumed_from": last,
        "train": {
            "global_step": int(trainer.state.global_step),
            "train_loss": float(result.training_loss),
            "seconds": round(train_seconds, 2),
            "examples_per_second": result.metrics.get("train_samples_per_second"),
            "trainable_parameters": int(trainable),
        },
        "eval_before": eval_before,
        "eval_after": eval_after,
        "log": [h for h in trainer.state.log_history],
        "versions": versions(),
        "total_seconds": round(time.perf_counter() - t0, 2),
    }
    write_json(summary, out / SUMMARY_FILE)
    return summary


def expected_scores(model, builder: PromptBuilder, answer: AnswerTokens, texts: Sequence[str],
                    contexts: Optional[Sequence[str]] = None, *, normalize: str = "vocab",
                    batch_size: int = 8) -> np.ndarray:
    """Expected score ``sum_k v_k P(s_k)`` of each item under the pointwise (``rail``) prompt.

    Returns
    -------
    numpy.ndarray
        float64, shape (n,).
    """
    from pycomp.ops import gather_answer_hidden

    lo, hi = int(answer.labels[0]), int(answer.labels[-1])
    values = torch.tensor([float(x) for x in answer.labels])
    collate = PairCollator(builder.tokenizer.pad_token_id)
    device = next(model.parameters()).device
    out: List[float] = []
    was_training = model.training
    model.eval()
    try:
        for s in range(0, len(texts), batch_size):
            feats = []
            for k in range(s, min(len(texts), s + batch_size)):
                ctx = contexts[k] if contexts is not None else None
                feats.append({"input_ids": builder._encode(builder.point_prompt(texts[k], ctx, lo, hi)),
                              "target": 0.0})
            batch = {k: v.to(device) for k, v in collate(feats).items()}
            with torch.no_grad():
                h, w = gather_answer_hidden(model, batch["input_ids"], batch["attention_mask"],
                                            position_ids=batch["position_ids"])
                logits = h.float() @ w.float().T
                if normalize == "scores":
                    p = torch.softmax(logits[:, answer.ids], dim=-1)
                else:
                    p = torch.softmax(logits, dim=-1)[:, answer.ids]
                out.extend((p.cpu() @ values).tolist())
    finally:
        model.train(was_training)
    return np.asarray(out, dtype=np.float64)
