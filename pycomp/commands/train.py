"""``pycomp train``: fine-tune a judge on items with gold scores (LoRA / QLoRA).

torch, transformers and peft are imported inside the command, so ``--help`` is fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pycomp.commands import options as opts


@opts.takes("items", "out", "text_field", "gold_field", "attribute", "noun", "group_field", "context_field",
            "context_noun", "id_field", "model", "objective", "gamma", "normalize", "per_item", "all_pairs", "design",
            "holdout", "holdout_groups", "max_steps", "epochs", "lr", "batch_size", "grad_accum", "warmup_steps",
            "lora_r", "lora_alpha", "lora_dropout", "lora_targets", "quantization", "device",
            "gradient_checkpointing", "loss_backend", "max_length", "template", "system", "labels",
            "rationale_field", "rationale_steps", "score_min", "score_max", "rank_candidates", "rank_alpha",
            "rank_margin", "save_steps", "logging_steps", "seed", "restart", "progress")
def train_command(
    items: str = typer.Argument(..., help="Items with gold scores: .jsonl, .csv, .tsv or .parquet, or example:NAME."),
    out: Path = typer.Option(..., "--out", "-o", help="Adapter folder to write (checkpoints inside; rerunning resumes)."),
    gold_field: str = typer.Option(..., "--gold-field", help="Field with the gold scores the judge learns from."),
    objective: str = typer.Option("soft", "--objective", help="soft (paper), hard (0/1 baseline), rail (regression-aware, TRACT), rank (RRESCUE)."),
    gamma: float = typer.Option(5.0, "--gamma", help="soft: target p* = sig(gamma (s_i - s_j) / std(s))."),
    normalize: str = typer.Option("pair", "--normalize", help="pair: softmax over the two answers (the judge's p); vocab: over the vocabulary."),
    holdout: float = typer.Option(0.0, "--holdout", help="Share of groups held out for the evaluation loss."),
    holdout_groups: Optional[str] = typer.Option(None, "--holdout-groups", help="Comma list of groups to hold out."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps (instead of --epochs)."),
    epochs: Optional[float] = typer.Option(None, "--epochs", help="Passes over the training pairs (default 1)."),
    lr: float = typer.Option(2e-4, "--lr", help="Peak learning rate."),
    batch_size: int = typer.Option(4, "--batch-size", "-b", help="Examples per step."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Gradient accumulation steps."),
    warmup_steps: int = typer.Option(0, "--warmup-steps", help="Linear warm-up steps."),
    lora_r: int = typer.Option(16, "--lora-r", help="LoRA rank."),
    lora_alpha: float = typer.Option(32.0, "--lora-alpha", help="LoRA alpha (scale alpha / r)."),
    lora_dropout: float = typer.Option(0.05, "--lora-dropout", help="LoRA dropout."),
    lora_targets: str = typer.Option("all-linear", "--lora-targets", help="all-linear or a comma list of module names."),
    quantization: str = typer.Option("auto", "--quantization", help="auto (4-bit QLoRA on CUDA, fp32 on CPU), 4bit (CUDA), none."),
    device: str = typer.Option("auto", "--device", help="auto or cpu."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing/--no-gradient-checkpointing", help="Recompute activations in the backward pass (less memory)."),
    loss_backend: str = typer.Option("auto", "--loss-backend", help="auto (fused Triton on CUDA, torch reference on CPU), triton, torch, hf (full logits)."),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Drop prompts longer than this many tokens."),
    rationale_field: Optional[str] = typer.Option(None, "--rationale-field", help="rail: rationales; trains their cross-entropy first."),
    rationale_steps: Optional[int] = typer.Option(None, "--rationale-steps", help="rail: steps of the rationale stage (default half)."),
    score_min: int = typer.Option(1, "--score-min", help="rail: lowest score digit."),
    score_max: int = typer.Option(5, "--score-max", help="rail: highest score digit."),
    rank_candidates: int = typer.Option(4, "--rank-candidates", help="rank: candidates per set."),
    rank_alpha: float = typer.Option(1.0, "--rank-alpha", help="rank: weight of the SFT term on the best candidate."),
    rank_margin: float = typer.Option(0.0, "--rank-margin", help="rank: hinge margin."),
    save_steps: int = typer.Option(50, "--save-steps", help="Checkpoint every this many steps."),
    logging_steps: int = typer.Option(10, "--logging-steps", help="Log every this many steps."),
    seed: int = typer.Option(0, "--seed", help="Seed of the pair plan, the split and the adapters."),
    restart: bool = typer.Option(False, "--restart", help="Start over: remove the checkpoints in --out instead of resuming."),
    **options,
) -> None:
    """Fine-tune a judge on items with gold scores; the adapter plugs into ``pycomp rank --adapter``.

    The default objective is the founding paper's: soft binary cross-entropy of the
    judge's pair-token probability against p* = sig(gamma (s_i - s_j) / std(s)), on pairs
    planned as in ``pycomp rank`` (within groups, both orders), with the same prompts and
    answer tokens as the judge. On a GPU the base model is 4-bit (QLoRA) and the loss is
    the fused Triton head loss; on CPU the base is fp32 and the loss its torch reference.

        pycomp train summeval.jsonl --text-field summary --gold-field coherence
          --group-field article_id --noun summary --attribute "more coherent"
          --objective soft --gamma 5 --per-item 4 --max-steps 200 --out adapters/coherence
        pycomp rank test.jsonl ... --adapter adapters/coherence
    """
    opts.wait_passively()
    try:
        if max_steps is not None and epochs is not None:
            raise ValueError("give either --max-steps or --epochs, not both")
        per_item = opts.per_item_or_default(options.pop("per_item"), options["all_pairs"], default=4.0)
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"--max-steps {max_steps} must be >= 1")
        if epochs is not None and not epochs > 0:
            raise ValueError(f"--epochs {epochs} must be > 0")
        if device not in ("auto", "cpu") and not device.startswith("cuda"):
            raise ValueError(f"--device {device!r} is not one of auto, cpu, cuda")
        from pycomp.judge._quiet import no_bitsandbytes_kernel_notice

        with no_bitsandbytes_kernel_notice():  # transformers' Trainer imports peft, which imports bitsandbytes
            from pycomp.train.config import JudgeTrainingConfig
            from pycomp.train.trainer import train_judge

        config = JudgeTrainingConfig(
            output_dir=str(out), objective=objective, gamma=gamma, normalize=normalize, loss_backend=loss_backend,
            model_name=options.pop("model"), quantization=quantization, use_cpu=device == "cpu", lora_r=lora_r,
            lora_alpha=lora_alpha, lora_dropout=lora_dropout, lora_target_modules=lora_targets,
            gold_field=gold_field, per_item=per_item, holdout=holdout, holdout_groups=holdout_groups,
            max_length=max_length, score_min=score_min, score_max=score_max, rationale_field=rationale_field,
            rationale_steps=rationale_steps, rank_candidates=rank_candidates, rank_alpha=rank_alpha,
            rank_margin=rank_margin, max_steps=max_steps if max_steps is not None else -1,
            num_train_epochs=epochs if epochs is not None else 1.0, learning_rate=lr,
            per_device_train_batch_size=batch_size, per_device_eval_batch_size=max(batch_size, 8),
            gradient_accumulation_steps=grad_accum, warmup_steps=warmup_steps,
            activation_checkpointing=gradient_checkpointing, save_steps=save_steps, logging_steps=logging_steps,
            seed=seed, disable_tqdm=not options.pop("progress"), **options,
        )
        summary = train_judge(items, config, resume=not restart, echo=typer.echo)
    except opts.ERRORS as exc:
        opts.fail(exc)
        return
    tr = summary["train"]
    line = f"trained {tr['global_step']} steps in {tr['seconds']:.1f} s, train loss {tr['train_loss']:.4f}"
    before, after = summary.get("eval_before"), summary.get("eval_after")
    if after:
        line += (f", held-out loss {before['eval_loss']:.4f} -> {after['eval_loss']:.4f}" if before
                 else f", held-out loss {after['eval_loss']:.4f}")
    typer.echo(line)
    typer.echo(f"adapter: {out} (use it with: pycomp rank ... --adapter {out})")
