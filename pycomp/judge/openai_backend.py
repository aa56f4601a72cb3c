"""Judge backend on OpenAI-compatible HTTP servers (vLLM, SGLang, llama.cpp, hosted APIs).

Two ways to read the answer, chosen with ``api``:

``completions`` (exact)
    The prompt is rendered with the model's chat template here (the tokenizer
    is loaded locally from ``tokenizer``, default ``model``) and sent as token
    ids to ``/completions`` with ``max_tokens=1``. vLLM (0.32 or later) takes
    ``logprob_token_ids``: the log-probabilities of exactly the answer tokens
    (every spelling, ``"A"`` and ``" A"``) from the full softmax at the answer
    position, whatever their rank, so the result is the same quantity the
    transformers backend computes. A server that ignores that field returns its
    top-``top_logprobs`` list instead, which is used as in ``chat``.
``chat`` (top-k)
    For hosted chat APIs, which render the prompt themselves and give only the
    top-k next tokens (``top_logprobs``, at most 20 for OpenAI). An answer label
    outside that list counts as probability 0; the answer mass reports how much
    of the distribution the labels had; a reply where no label is visible is
    refused with an error naming the URL, model and prompt.

``auto`` uses ``completions`` when a tokenizer for ``model`` can be loaded, else ``chat``.

Requests are spread over the base URLs with bounded concurrency and retried on
429/5xx, timeouts and dropped connections (:mod:`pycomp.judge.http`).

Scaling out: start N servers (e.g. ``vllm serve MODEL --port 8000`` on each
node) and pass ``--base-url`` once per server, or put them behind one URL
(a load balancer, a Ray Serve deployment) and pass that URL.
"""
from __future__ import annotations

import json
import math
import os
import re
from typing import List, Optional, Sequence

import numpy as np

from pycomp.judge.backend import JudgeBackend, LabelScores, PromptTooLongError, check_label_ids, check_labels
from pycomp.judge.http import EndpointError, EndpointPool, RetryPolicy

__all__ = ["OpenAIBackend", "ServerPromptTooLongError", "APIS"]

APIS = ("auto", "completions", "chat")
_PROBE_USER = "Which text is better, text A or text B?"
_PROBE_PREFIX = "The text that is better is text"
_CONTEXT_WORDS = ("maximum context length", "context length", "too long", "max_model_len")


class ServerPromptTooLongError(PromptTooLongError):
    """A prompt longer than the server's context (names the URL and the model)."""

    def __init__(self, index: int, n_tokens: int, limit: int, url: str, model: str, detail: str = ""):
        super().__init__(index, n_tokens, limit)
        self.url, self.model = url, model
        tokens = f"{n_tokens} tokens" if n_tokens >= 0 else "too many tokens"
        context = f"the context of {limit} tokens" if limit >= 0 else "its context"
        self.args = (f"prompt {index} of the batch has {tokens}, more than {context} of model {model!r} "
                     f"at {url}" + (f" ({detail})" if detail else ""),)


def _api_key(api_key_env: Optional[str]) -> Optional[str]:
    """The API key from the environment variable ``api_key_env`` (default OPENAI_API_KEY, optional)."""
    if api_key_env:
        value = os.environ.get(api_key_env)
        if not value:
            raise ValueError(f"--api-key-env {api_key_env}: the environment variable {api_key_env} is not set "
                             f"(or empty); export it with the server's API key")
        return value
    return os.environ.get("OPENAI_API_KEY") or None


class OpenAIBackend(JudgeBackend):
    """Judge through OpenAI-compatible servers.

    Parameters
    ----------
    model : str
        The model name the servers serve (``--served-model-name`` of ``vllm serve``).
    base_urls : sequence of str
        One or more base URLs, e.g. ``http://127.0.0.1:8000/v1``.
    labels : sequence of str
        Answer labels (two for pairwise judging, more for pointwise scores).
    api : {"auto", "completions", "chat"}
        How to ask (module docstring).
    tokenizer : str, optional
        Where the tokenizer for ``completions`` comes from: a registered name, a
        folder or a Hub id (see :func:`pycomp.judge.models.resolve_model`); default ``model``.
    api_key_env : str, optional
        Environment variable holding the API key (default: OPENAI_API_KEY when set).
    concurrency : int
        Most requests in flight at once over all servers.
    top_logprobs : int
        Top-k list size asked for where exact log-probabilities are not available.
    policy : pycomp.judge.http.RetryPolicy, optional
        Retries, backoff and timeout.
    use_chat_template : bool, optional
        ``completions``: wrap prompts in the tokenizer's chat template (default: when it has one).

    Raises
    ------
    EndpointError
        No server answers ``GET /models``, or one does not serve ``model``.
    ValueError
        Bad options; ``api="completions"`` without a loadable tokenizer.
    """

    name = "openai"

    def __init__(self, model: str, base_urls: Sequence[str], *, labels: Sequence[str] = ("A", "B"),
                 api: str = "auto", tokenizer: Optional[str] = None, api_key_env: Optional[str] = None,
                 concurrency: int = 32, top_logprobs: int = 20, policy: Optional[RetryPolicy] = None,
                 use_chat_template: Optional[bool] = None):
        if not model:
            raise ValueError("--backend openai needs --model: the model name the server serves")
        if isinstance(base_urls, str):
            base_urls = [base_urls]
        if not base_urls:
            raise ValueError("--backend openai needs --base-url URL (repeat it for several servers)")
        if api not in APIS:
            raise ValueError(f"api={api!r} is not one of {', '.join(APIS)}")
        self.model = str(model)
        self.labels = check_labels(labels)
        self.top_logprobs = int(top_logprobs)
        key = _api_key(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.pool = EndpointPool(base_urls, concurrency=concurrency, headers=headers, policy=policy)
        self.max_model_len = self._check_servers()
        self.tokenizer, self.tokenizer_identity = None, None
        if api in ("auto", "completions"):
            try:
                self.tokenizer, self.tokenizer_identity = _load_tokenizer(tokenizer or self.model)
            except (ValueError, OSError) as exc:
                if api == "completions":
                    raise ValueError(f"api=completions needs the tokenizer of {tokenizer or self.model!r}: {exc}; "
                                     f"pass --tokenizer, or use the chat API") from exc
        self.api = "completions" if self.tokenizer is not None else "chat"
        if self.api == "completions":
            from pycomp.judge.transformers_backend import label_token_ids

            tok = self.tokenizer
            if use_chat_template is None:
                use_chat_template = bool(getattr(tok, "chat_template", None))
            self.use_chat_template = bool(use_chat_template)
            probe = self.render(_PROBE_USER, answer_prefix=_PROBE_PREFIX)
            self.label_ids = [label_token_ids(tok, lab, probe) for lab in self.labels]
            check_label_ids(self.labels, self.label_ids)
            self._flat_ids = sorted({i for ids in self.label_ids for i in ids})
            self._label_strings = [{tok.decode([i]) for i in ids} for ids in self.label_ids]
        else:
            self.use_chat_template = True
            self.label_ids = None
            self._flat_ids = []
            self._label_strings = None
        #: replies read exactly (``exact``) or from a top-k list (``top_k``)
        self.counts = {"exact": 0, "top_k": 0}

    # ---- set-up ------------------------------------------------------------------------------
    def _check_servers(self) -> Optional[int]:
        """Every base URL must answer ``GET /models`` and serve ``self.model``; returns its context length."""
        limits = []
        for url in self.pool.base_urls:
            try:
                listing = self.pool.get_json("/models", url=url)
            except EndpointError as exc:
                raise EndpointError(f"{exc} (model {self.model!r}); start the server or fix --base-url",
                                    url=url, model=self.model) from None
            cards = listing.get("data", []) if isinstance(listing, dict) else []
            names = [c.get("id") for c in cards if isinstance(c, dict)]
            card = next((c for c in cards if c.get("id") == self.model), None)
            if card is None:
                served = ", ".join(map(str, names)) or "nothing"
                raise EndpointError(f"{url} does not serve model {self.model!r} (it serves: {served}); "
                                    f"pass --model with one of those names", url=url, model=self.model)
            if card.get("max_model_len"):
                limits.append(int(card["max_model_len"]))
        return min(limits) if limits else None

    def close(self) -> None:
        """Close the HTTP connections."""
        self.pool.close()

    # ---- the interface -----------------------------------------------------------------------
    def render(self, user: str, system: Optional[str] = None, answer_prefix: str = "") -> str:
        if self.api == "chat":
            content = user + ("\n\n" + answer_prefix if answer_prefix else "")
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": content})
            return json.dumps({"messages": messages}, ensure_ascii=False)
        if not self.use_chat_template:
            return (system + "\n\n" if system else "") + user + "\n\n" + (answer_prefix or "Answer:")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + answer_prefix

    def fingerprint(self) -> dict:
        out = {"backend": self.name, "model": self.model, "api": self.api, "labels": list(self.labels)}
        if self.api == "completions":
            out.update({"tokenizer": self.tokenizer_identity, "chat_template": self.use_chat_template,
                        "label_ids": [list(map(int, ids)) for ids in self.label_ids]})
        else:
            out["top_logprobs"] = self.top_logprobs
        return out

    def describe(self) -> dict:
        out = self.fingerprint()
        out.update({"base_urls": list(self.pool.base_urls), "concurrency": self.pool.concurrency,
                    "max_model_len": self.max_model_len, "replies": dict(self.counts),
                    "retried": dict(self.pool.retried)})
        return out

    def label_logprobs(self, prompts: Sequence[str]) -> LabelScores:
        n_labels = len(self.labels)
        if len(prompts) == 0:
            return LabelScores(logp=np.zeros((0, n_labels)))
        if self.api == "completions":
            ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
            if self.max_model_len is not None:
                for k, row in enumerate(ids):
                    if len(row) >= self.max_model_len:  # the answer token needs one more position
                        raise ServerPromptTooLongError(k, len(row), self.max_model_len - 1,
                                                       ", ".join(self.pool.base_urls), self.model)
            payloads = [{"model": self.model, "prompt": list(map(int, row)), "max_tokens": 1, "temperature": 0.0,
                         "logprobs": self.top_logprobs, "logprob_token_ids": self._flat_ids,
                         "return_tokens_as_token_ids": True, "add_special_tokens": False} for row in ids]
            path, parse = "/completions", self._parse_completion
        else:
            payloads = [{"model": self.model, "messages": json.loads(p)["messages"], "max_tokens": 1,
                         "temperature": 0.0, "logprobs": True, "top_logprobs": self.top_logprobs} for p in prompts]
            path, parse = "/chat/completions", self._parse_chat
        try:
            rows = self.pool.post_many(path, payloads, parse, model=self.model)
        except EndpointError as exc:
            text = str(exc).lower()
            if exc.status == 400 and any(w in text for w in _CONTEXT_WORDS):
                detail = str(exc).split("HTTP 400: ", 1)[-1]
                n = _first_int((r"(\d+)\s+input\s+tokens", r"value=(\d+)"), detail)
                limit = self.max_model_len or _first_int((r"context length is (\d+)",), detail)
                raise ServerPromptTooLongError(exc.index, n, limit, exc.url, self.model, detail=detail) from None
            raise
        return LabelScores(logp=np.asarray(rows, dtype=np.float64).reshape(len(prompts), n_labels))

    # ---- reading replies ---------------------------------------------------------------------
    def _no_logprobs(self, url: str, index: int, what: str) -> EndpointError:
        return EndpointError(f"{url} answered model {self.model!r} (prompt {index} of the batch) without {what}; "
                             f"the judge needs next-token log-probabilities: use a server that returns them "
                             f"(vLLM, SGLang, llama.cpp --logprobs, OpenAI chat with logprobs)",
                             url=url, model=self.model, index=index)

    def _parse_completion(self, body: dict, index: int, url: str) -> List[float]:
        try:
            logprobs = body["choices"][0].get("logprobs")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise self._no_logprobs(url, index, "any choices") from None
        top = (logprobs or {}).get("top_logprobs") if isinstance(logprobs, dict) else None
        if not top or not isinstance(top[0], dict) or not top[0]:
            raise self._no_logprobs(url, index, "log-probabilities")
        found = {}
        for key, value in top[0].items():
            if isinstance(key, str) and key.startswith("token_id:"):
                found[int(key[len("token_id:"):])] = float(value)
        if all(i in found for i in self._flat_ids):
            self.counts["exact"] += 1
            return [_logsumexp([found[i] for i in ids]) for ids in self.label_ids]
        # A server without logprob_token_ids: its top-k list, keyed by token text.
        entries = [(str(k), float(v)) for k, v in top[0].items()]
        return self._from_top_k(entries, url, index, self._label_strings)

    def _parse_chat(self, body: dict, index: int, url: str) -> List[float]:
        try:
            content = body["choices"][0]["logprobs"]["content"]
            entries = [(str(e["token"]), float(e["logprob"])) for e in content[0]["top_logprobs"]]
        except (KeyError, IndexError, TypeError):
            raise self._no_logprobs(url, index, "top_logprobs") from None
        if not entries:
            raise self._no_logprobs(url, index, "top_logprobs")
        return self._from_top_k(entries, url, index, None)

    def _from_top_k(self, entries, url: str, index: int, strings) -> List[float]:
        """Sum the visible spellings of each label in a top-k list; a label not in it counts as probability 0."""
        seen = {}
        for token, logp in entries:
            seen.setdefault(token, logp)  # one entry per distinct token text
        out = []
        for k, label in enumerate(self.labels):
            values = [lp for token, lp in seen.items()
                      if (token in strings[k] if strings is not None else token.strip() == label.strip())]
            out.append(_logsumexp(values) if values else -math.inf)
        if all(v == -math.inf for v in out):
            shown = ", ".join(repr(t) for t, _ in entries[:10])
            raise EndpointError(
                f"{url}: none of the answer labels {list(self.labels)} is among the {len(entries)} most likely next "
                f"tokens of model {self.model!r} for prompt {index} of the batch (it shows {shown}); its answer "
                f"cannot be read: refusing rather than guessing. Check the template and labels, or use a server "
                f"with exact log-probabilities (vLLM's /completions)", url=url, model=self.model, index=index)
        self.counts["top_k"] += 1
        return out


def _logsumexp(values) -> float:
    values = [v for v in values if v > -math.inf]
    if not values:
        return -math.inf
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _first_int(patterns, text: str) -> int:
    """The number the first matching pattern captures in a server's message (-1: none matches)."""
    for pattern in patterns:
        match = re.search(pattern, text)
        if match:
            return int(match.group(1))
    return -1


def _load_tokenizer(spec: str):
    """(tokenizer, identity) for a model spec that resolves locally (registered name, folder, .gguf, Hub id)."""
    from transformers import AutoTokenizer

    from pycomp.judge._quiet import quiet_transformers
    from pycomp.judge.models import resolve_model

    source = resolve_model(spec, fetch=False)
    kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    with quiet_transformers():
        tok = AutoTokenizer.from_pretrained(source.path, **kwargs)
    return tok, source.identity
