"""The trainable judge: a base model (4-bit NF4 on CUDA, fp32 on CPU) with LoRA adapters.

QLoRA: the base model is loaded in 4-bit with bitsandbytes (CUDA only),
prepared with :func:`peft.prepare_model_for_kbit_training` (norms and head in
fp32, input gradients for checkpointing), and LoRA adapters are added with
:func:`peft.get_peft_model`; only the adapters train. On CPU the base stays in
fp32 (LoRA, no quantisation). Loading goes through the judge's own
:func:`pycomp.judge.models.load_model`, so the base is the very model
``pycomp rank`` loads.
"""
from __future__ import annotations

from typing import Optional

__all__ = ["resolve_quantization", "load_base_model", "add_lora"]


def resolve_quantization(quantization: str, device: str) -> str:
    """``"4bit"`` or ``"none"`` for a ``quantization`` setting on a resolved ``device``.

    Raises
    ------
    ValueError
        ``"4bit"`` without CUDA, or without bitsandbytes, with the fix.
    """
    on_cuda = str(device).startswith("cuda")
    has_bnb = on_cuda and _bitsandbytes_imports()
    if quantization == "auto":
        if on_cuda and not has_bnb:
            import warnings

            warnings.warn("bitsandbytes is not installed: training LoRA on an unquantised base instead of QLoRA "
                          "(pip install bitsandbytes for 4-bit)", RuntimeWarning, stacklevel=2)
        return "4bit" if on_cuda and has_bnb else "none"
    if quantization == "4bit":
        if not on_cuda:
            raise ValueError(
                f"quantization='4bit' (QLoRA) needs a CUDA GPU and none is in use (device={device!r}); "
                f"on CPU train LoRA on the fp32 base: use --quantization none (or auto)"
            )
        if not has_bnb:
            raise ValueError("quantization='4bit' (QLoRA) needs bitsandbytes: pip install bitsandbytes")
    return quantization


def _bitsandbytes_imports() -> bool:
    """Whether bitsandbytes imports (asked only on CUDA: 4-bit needs a GPU)."""
    from pycomp.judge._quiet import no_bitsandbytes_kernel_notice

    try:
        with no_bitsandbytes_kernel_notice():
            import bitsandbytes  # noqa: F401
    except Exception:  # ImportError, or a CPU-only build failing at import
        return False
    return True


def load_base_model(name: Optional[str], *, device: str = "auto", quantization: str = "auto",
                    gradient_checkpointing: bool = False, progress=None):
    """Load the base model and tokenizer for training.

    Parameters
    ----------
    name : str, optional
        As for ``pycomp rank --model`` (default ``smollm2-135m``).
    device : {"auto", "cpu", "cuda", "cuda:N"}
    quantization : {"auto", "4bit", "none"}
        See :func:`resolve_quantization`.
    gradient_checkpointing : bool
        Passed to :func:`peft.prepare_model_for_kbit_training` for 4-bit bases.

    Returns
    -------
    model, tokenizer, info
        As :func:`pycomp.judge.models.load_model`; ``info["quantization"]``
        is the resolved mode.
    """
    from pycomp.judge.models import load_model, resolve_device

    dev = resolve_device(device)
    quant = resolve_quantization(quantization, dev)
    model, tokenizer, info = load_model(name, device=dev, quantization=quant, progress=progress)
    if quant == "4bit":
        from pycomp.judge._quiet import quiet_peft

        with quiet_peft():
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=gradient_checkpointing,
                gradient_checkpointing_kwargs={"use_reentrant": False},
            )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, info


def add_lora(model, *, r: int = 16, alpha: float = 32.0, dropout: float = 0.05,
             target_modules: str = "all-linear", seed: Optional[int] = None):
    """Wrap ``model`` in LoRA adapters (peft); only the adapters are trainable.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        Modified in place (adapter layers are injected) and wrapped.
    r, alpha, dropout : LoRA rank, scaling numerator and dropout.
    target_modules : str
        ``"all-linear"`` (every linear layer but the head, as QLoRA) or a
        comma-separated list of module names.
    seed : int, optional
        Seeds the adapter initialisation.

    Returns
    -------
    peft.PeftModel
    """
    import torch

    from pycomp.judge._quiet import quiet_peft

    targets = target_modules if target_modules == "all-linear" else [
        x.strip() for x in str(target_modules).split(",") if x.strip()]
    if seed is not None:
        torch.manual_seed(int(seed))
    with quiet_peft():
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=int(r), lora_alpha=float(alpha), lora_dropout=float(dropout), target_modules=targets,
                            bias="none", task_type="CAUSAL_LM")
        return get_peft_model(model, config)
