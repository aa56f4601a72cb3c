"""Judge backend on a Hugging Face causal LM (transformers)."""
from __future__ import annotations

import inspect
from typing import List, Optional, Sequence

import numpy as np

from pycomp.judge.backend import (
    JudgeBackend, LabelScores, PromptTooLongError, check_label_ids, check_labels, model_fingerprint,
)
from pycomp.judge.padding import left_pad, position_ids

_PROBE_USER = "Which text is better, text A or text B?"
_PROBE_PREFIX = "The text that is better is text"


def label_token_ids(tokenizer, label: str, rendered_prompt: Optional[str] = None) -> List[int]:
    """Token ids the model may use to answer ``label`` as its next token.

    Tokenizers spell a letter differently at the start of a reply: ``"A"``,
    ``" A"`` (GPT-2 style ``"ĠA"``) or ``"▁A"`` (SentencePiece). Every spelling
    that is a single token and decodes to ``label`` (up to surrounding spaces)
    is collected; so is the token the tokenizer produces when ``label`` is
    appended to ``rendered_prompt``.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    label : str
        The answer label, e.g. ``"A"``.
    rendered_prompt : str, optional
        A full prompt as the model sees it (ending in the generation prompt).

    Returns
    -------
    list of int
        Sorted, de-duplicated token ids.

    Raises
    ------
    ValueError
        If no spelling of ``label`` is a single token.
    """
    ids = set()
    tried = {}
    for text in (label, " " + label, "\n" + label):
        enc = tokenizer.encode(text, add_special_tokens=False)
        tried[text] = enc
        if len(enc) == 1:
            ids.add(enc[0])
        elif text.startswith("\n") and len(enc) == 2 and tokenizer.decode(enc[:1]).strip() == "":
            ids.add(enc[1])  # "\nA" -> ["\n", "A"]: the A that follows a newline
    vocab = tokenizer.get_vocab()
    for piece in (label, "Ġ" + label, "▁" + label):
        if piece in vocab:
            ids.add(vocab[piece])
    if rendered_prompt is not None:
        base = tokenizer.encode(rendered_prompt, add_special_tokens=False)
        full = tokenizer.encode(rendered_prompt + label, add_special_tokens=False)
        if len(full) == len(base) + 1 and full[: len(base)] == base:
            ids.add(full[-1])
    unk = getattr(tokenizer, "unk_token_id", None)
    ids = sorted(i for i in ids if i != unk and tokenizer.decode([i]).strip() == label.strip())
    if not ids:
        raise ValueError(
            f"answer label {label!r} is not a single token for this tokenizer "
            f"(encodings: {tried}); choose labels that are single tokens, e.g. A/B"
        )
    return ids


class TransformersBackend(JudgeBackend):
    """Batched next-token judge on a transformers causal LM.

    Prompts are left-padded so the last position of every row is the answer
    position, and only that position's logits are computed (``logits_to_keep=1``);
    nothing is generated.

    Parameters
    ----------
    model, tokenizer
        A loaded causal LM and its tokenizer (see :func:`pycomp.judge.models.load_model`).
    info : dict
        What :func:`~pycomp.judge.models.load_model` returned about the model.
    labels : sequence of str
        The answer labels, two or more: ``("A", "B")`` to compare two texts,
        ``("1", "2", "3", "4", "5")`` to score one; each must be a single token.
    use_chat_template : bool, optional
        Wrap prompts in the tokenizer's chat template (default: when it has one).
    share_prefix : bool
        Run the token prefix shared by a whole batch (system prompt, chat header,
        the article all summaries of a group are compared against) once and reuse
        its keys/values for every prompt of the batch.
    min_shared_prefix : int
        Shortest shared prefix worth a separate pass.
    """

    name = "transformers"

    def __init__(self, model, tokenizer, info: Optional[dict] = None, labels: Sequence[str] = ("A", "B"),
                 use_chat_template: Optional[bool] = None, share_prefix: bool = True, min_shared_prefix: int = 16):
        self.model = model
        self.share_prefix = bool(share_prefix)
        self.min_shared_prefix = int(min_shared_prefix)
        self.tokenizer = tokenizer
        self.info = dict(info or {})
        self.labels = check_labels(labels)
        if use_chat_template is None:
            use_chat_template = bool(getattr(tokenizer, "chat_template", None))
        elif use_chat_template and not getattr(tokenizer, "chat_template", None):
            raise ValueError("use_chat_template=True but this tokenizer has no chat template")
        self.use_chat_template = use_chat_template
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        probe = self.render(_PROBE_USER, answer_prefix=_PROBE_PREFIX)
        self.label_ids = [label_token_ids(tokenizer, lab, probe) for lab in self.labels]
        check_label_ids(self.labels, self.label_ids)
        config = getattr(model, "config", None)
        self.max_length = int(getattr(config, "max_position_embeddings", 0) or 0) or None
        self.device = next(model.parameters()).device
        self.cache_keyword = cache_keyword(model)

    @classmethod
    def load(cls, model: Optional[str] = None, *, adapter=None, device: str = "auto", dtype: str = "auto",
             quantization: str = "none", labels: Sequence[str] = ("A", "B"),
             use_chat_template: Optional[bool] = None, share_prefix: bool = True,
             progress=None) -> "TransformersBackend":
        """Load a model (see :func:`pycomp.judge.models.load_model`) and wrap it."""
        from pycomp.judge.models import load_model

        mdl, tok, info = load_model(model, adapter=adapter, device=device, dtype=dtype,
                                    quantization=quantization, progress=progress)
        return cls(mdl, tok, info, labels=labels, use_chat_template=use_chat_template, share_prefix=share_prefix)

    def render(self, user: str, system: Optional[str] = None, answer_prefix: str = "") -> str:
        if not self.use_chat_template:
            return (system + "\n\n" if system else "") + user + "\n\n" + (answer_prefix or "Answer:")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + answer_prefix

    def fingerprint(self) -> dict:
        return model_fingerprint(self.name, self.info, self.use_chat_template, self.label_ids)

    def describe(self) -> dict:
        out = dict(self.info)
        out.update(self.fingerprint())
        return out

    def label_logprobs(self, prompts: Sequence[str]) -> LabelScores:
        import torch

        if len(prompts) == 0:
            return LabelScores(logp=np.zeros((0, len(self.labels))))
        ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        lengths = [len(x) for x in ids]
        if self.max_length is not None and max(lengths) > self.max_length:
            idx = int(np.argmax(lengths))
            raise PromptTooLongError(idx, lengths[idx], self.max_length)
        common = _common_prefix_length(ids) if self.share_prefix and len(ids) > 1 else 0
        with torch.inference_mode():
            if common >= self.min_shared_prefix:
                logits = self._forward_shared(ids, common)
            else:
                logits = self._forward_padded(ids)
            logp = torch.log_softmax(logits.float(), dim=-1)
            columns = [torch.logsumexp(logp[:, ids], dim=-1) for ids in self.label_ids]
            matrix = torch.stack(columns, dim=1)
        return LabelScores(logp=matrix.double().cpu().numpy())

    def _forward_padded(self, ids):
        """One left-padded forward pass; logits of the last position only."""
        input_ids, mask = left_pad(ids, self.tokenizer.pad_token_id)
        out = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                         position_ids=position_ids(mask).to(self.device), logits_to_keep=1, use_cache=False)
        return out.logits[:, -1, :]

    def _forward_shared(self, ids, common: int):
        """Run the batch's shared token prefix once, then every suffix against its cached keys/values."""
        import torch

        prefix = torch.tensor([ids[0][:common]], dtype=torch.long, device=self.device)
        out = self.model(input_ids=prefix, use_cache=True, logits_to_keep=1)
        cache = out.get(self.cache_keyword)
        cache.batch_repeat_interleave(len(ids))
        input_ids, mask = left_pad([x[common:] for x in ids], self.tokenizer.pad_token_id)
        full_mask = torch.cat([torch.ones((len(ids), common), dtype=torch.long), mask], dim=1)
        out = self.model(input_ids=input_ids.to(self.device), attention_mask=full_mask.to(self.device),
                         position_ids=position_ids(mask, common).to(self.device), logits_to_keep=1, use_cache=True,
                         **{self.cache_keyword: cache})
        return out.logits[:, -1, :]


def cache_keyword(model) -> str:
    """The name under which ``model`` takes and returns its key/value cache.

    transformers 5.x renamed ``past_key_values`` to ``cache`` and warns (a
    ``FutureWarning`` and a log line) on every use of the old name; earlier
    versions know only ``past_key_values``.

    Parameters
    ----------
    model : transformers.PreTrainedModel or peft.PeftModel

    Returns
    -------
    str
        ``"cache"`` or ``"past_key_values"``.
    """
    from pycomp.ops.gather import unwrap_model

    params = inspect.signature(unwrap_model(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _common_prefix_length(seqs) -> int:
    """Length of the longest token prefix shared by every sequence, leaving each at least one token."""
    first = seqs[0]
    limit = min(len(x) for x in seqs) - 1
    n = 0
    while n < limit:
        token = first[n]
        if any(x[n] != token for x in seqs):
            break
        n += 1
    return max(n, 0)
