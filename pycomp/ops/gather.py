"""Hidden states at the answer positions of a Hugging Face causal LM, without logits.

A causal LM computes ``logits = lm_head(norm(decoder(x)))`` for all B x T
positions, i.e. a (B, T, V) tensor, of which a judge needs one row per
sample. :func:`gather_answer_hidden` runs only the decoder (whose output is
already final-normed in Hugging Face models), picks the hidden state whose
next-token distribution scores the answer, and returns it with the LM head
weight, ready for :func:`pycomp.ops.pair_loss` / :func:`pycomp.ops.score_loss`.

The model helpers here (:func:`unwrap_model`, :func:`decoder_of`,
:func:`decoder_hidden`, :func:`lm_head_weight`) are the one place that knows
how a PEFT-wrapped Hugging Face causal LM is laid out; the judge and the
trainer use them too.
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["answer_positions", "gather_answer_hidden", "lm_head_weight", "unwrap_model", "decoder_of",
           "decoder_hidden"]

# config attributes that change logits = hidden @ weight.T, with their neutral value
_LOGIT_MODIFIERS = {
    "final_logit_softcapping": None,  # Gemma 2 / 3
    "logit_scale": 1.0,  # Cohere
    "logits_scaling": 1.0,  # Granite
}


def answer_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each row, for left or right padding.

    Parameters
    ----------
    attention_mask : torch.Tensor
        (B, T), 1 on real tokens and 0 on padding.

    Returns
    -------
    torch.Tensor
        (B,) int64: the position whose next-token logits score the answer.

    Raises
    ------
    ValueError
        If ``attention_mask`` is not 2-D or a row has no real token.
    """
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be 2-D (B, T), got shape {tuple(attention_mask.shape)}")
    mask = attention_mask != 0
    empty = ~mask.any(dim=1)
    if bool(empty.any()):
        i = int(torch.nonzero(empty)[0])
        raise ValueError(f"attention_mask[{i}] has no real token (all padding)")
    T = mask.shape[1]
    return (T - 1 - torch.flip(mask, dims=[1]).to(torch.int8).argmax(dim=1)).to(torch.long)


def unwrap_model(model):
    """The transformers model under a PEFT wrapper (LoRA layers stay injected); ``model`` otherwise.

    Parameters
    ----------
    model : transformers.PreTrainedModel or peft.PeftModel

    Returns
    -------
    transformers.PreTrainedModel
    """
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def decoder_of(model):
    """The decoder stack of a causal LM (the part before the LM head), through a PEFT wrapper.

    ``model.get_decoder()`` where it gives a sub-module, else the attribute
    named by ``model.base_model_prefix`` (``model.model`` for Llama-style models).

    Raises
    ------
    ValueError
        If neither gives the decoder.
    """
    model = unwrap_model(model)
    get_decoder = getattr(model, "get_decoder", None)
    dec = get_decoder() if callable(get_decoder) else None
    if dec is None or dec is model:
        prefix = getattr(model, "base_model_prefix", "model")
        dec = getattr(model, prefix, None)
    if dec is None:
        raise ValueError(
            f"cannot find the decoder of {type(model).__name__}: neither get_decoder() nor "
            f"the attribute base_model_prefix={getattr(model, 'base_model_prefix', None)!r} gives it"
        )
    return dec


def decoder_hidden(model, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                   **model_kwargs) -> torch.Tensor:
    """Final-norm hidden states of every position (B, T, d), from the decoder only (no logits).

    Parameters
    ----------
    model : transformers.PreTrainedModel or peft.PeftModel
        A causal LM; adapters stay active.
    input_ids, attention_mask : torch.Tensor
        (B, T).
    **model_kwargs
        Passed to the decoder (e.g. ``position_ids``); ``use_cache`` defaults to False.
    """
    model_kwargs.setdefault("use_cache", False)
    out = decoder_of(model)(input_ids=input_ids, attention_mask=attention_mask, **model_kwargs)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def lm_head_weight(model) -> torch.Tensor:
    """The (V, d) LM head weight of a causal LM, checked for use by the fused losses.

    Raises
    ------
    ValueError
        If the model has no output embeddings, the head has a bias, the
        weight is not a floating (V, d) tensor (e.g. a quantised head), or the
        config rescales / soft-caps the logits.
    """
    model = unwrap_model(model)
    cfg = getattr(model, "config", None)
    for name, neutral in _LOGIT_MODIFIERS.items():
        val = getattr(cfg, name, neutral)
        if val is not None and val != neutral:
            raise ValueError(
                f"model.config.{name} = {val!r}: the fused head losses assume "
                "logits = hidden @ weight.T; use the full-logits path for this model"
            )
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or not hasattr(head, "weight"):
        raise ValueError(f"{type(model).__name__} has no output embeddings (LM head)")
    if getattr(head, "bias", None) is not None:
        raise ValueError("the LM head has a bias; the fused head losses support weight-only heads")
    w = head.weight
    if w.dim() != 2 or not w.is_floating_point():
        raise ValueError(
            f"the LM head weight must be a floating (V, d) tensor, got dtype {w.dtype} and shape "
            f"{tuple(w.shape)} (a quantised head is not supported)"
        )
    return w


def gather_answer_hidden(
    model,
    input_ids: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
    *,
    positions: Optional[torch.Tensor] = None,
    **model_kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final-norm hidden states at the answer positions and the LM head weight.

    Runs the model's decoder (``model.get_decoder()``, through a PEFT wrapper
    if there is one) instead of the full model, so no (B, T, V) logits are
    computed. ``hidden @ weight.T`` equals ``model(...).logits[b, positions[b]]``.

    Parameters
    ----------
    model : transformers.PreTrainedModel or peft.PeftModel
        A causal LM (``*ForCausalLM``).
    input_ids : torch.Tensor
        (B, T) prompt token ids, ending where the answer token would follow.
    attention_mask : torch.Tensor, optional
        (B, T) with 1 on real tokens and 0 on padding, left or right padded.
        Without it every row is taken to be T tokens long.
    positions : torch.Tensor, optional
        (B,) positions to read instead of the last real token of each row.
    **model_kwargs
        Passed to the decoder (e.g. ``position_ids``).

    Returns
    -------
    hidden : torch.Tensor
        (B, d) hidden states, differentiable with respect to the model.
    weight : torch.Tensor
        (V, d) LM head weight (a parameter of the model, not a copy).

    Raises
    ------
    ValueError
        Bad shapes, a row with no real token, positions outside [0, T), or a
        model whose logits are not ``hidden @ weight.T`` (see
        :func:`lm_head_weight`).

    Examples
    --------
    >>> hidden, weight = gather_answer_hidden(model, batch["input_ids"], batch["attention_mask"])
    ... # doctest: +SKIP
    >>> loss = pair_loss(hidden, weight, id_a, id_b, batch["target"])  # doctest: +SKIP
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be 2-D (B, T), got shape {tuple(input_ids.shape)}")
    B, T = input_ids.shape
    if attention_mask is not None and tuple(attention_mask.shape) != (B, T):
        raise ValueError(
            f"attention_mask must have the shape of input_ids {(B, T)}, got {tuple(attention_mask.shape)}"
        )
    weight = lm_head_weight(model)
    if positions is None:
        if attention_mask is None:
            positions = torch.full((B,), T - 1, dtype=torch.long, device=input_ids.device)
        else:
            positions = answer_positions(attention_mask)
    else:
        positions = torch.as_tensor(positions, device=input_ids.device).to(torch.long)
        if positions.shape != (B,):
            raise ValueError(f"positions must have shape (B,) = ({B},), got {tuple(positions.shape)}")
        bad = (positions < 0) | (positions >= T)
        if bool(bad.any()):
            i = int(torch.nonzero(bad)[0])
            raise ValueError(f"positions[{i}] = {int(positions[i])} is outside [0, T={T})")
    last = decoder_hidden(model, input_ids, attention_mask, **model_kwargs)
    rows = torch.arange(B, device=last.device)
    return last[rows, positions.to(last.device)], weight
