"""The openai backend against a real ``vllm serve`` on 127.0.0.1, directly and through a fault-injecting proxy.

Tolerance (as in test_vllm_backend.py): the server runs the same fp32 weights on
the same token ids; measured here the log-probabilities differ from the
transformers backend by at most 1.9e-5 (p(A) by 4.5e-6) and from the in-process
engine by 0 (another batch composition could change the summation order).
Bound: 1e-3.
"""
import json

import numpy as np
import pytest

from engine_cases import KEY_ENV, MAX_MODEL_LEN, SERVED_NAME, review_prompts
from fault_proxy import FaultProxy

from pycomp.judge.http import EndpointError, RetryPolicy

LOGP_TOL = 1e-3

pytestmark = pytest.mark.llm


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_completions_agree_with_vllm_and_transformers(openai_backend_factory, vllm_backend, tf_backend):
    backend = openai_backend_factory()
    assert backend.api == "completions" and backend.max_model_len == MAX_MODEL_LEN
    _, _, prompts = review_prompts(tf_backend, n_pairs=6)
    assert review_prompts(backend, n_pairs=6)[2] == prompts
    got = backend.label_logprobs(prompts)
    ref = tf_backend.label_logprobs(prompts)
    eng = vllm_backend.label_logprobs(prompts)
    d_tf = float(np.max(np.abs(got.logp - ref.logp)))
    d_eng = float(np.max(np.abs(got.logp - eng.logp)))
    dp = float(np.max(np.abs(got.p_a - ref.p_a)))
    print(f"openai vs transformers: max |dlogp| {d_tf:.2e}, |dp| {dp:.2e}; openai vs vllm in-process {d_eng:.2e}")
    assert d_tf < LOGP_TOL and d_eng < LOGP_TOL and dp < LOGP_TOL
    assert backend.counts == {"exact": len(prompts), "top_k": 0}
    assert backend.fingerprint()["label_ids"] == [list(ids) for ids in tf_backend.label_ids]


def test_chat_top_k_never_exceeds_the_exact_values(openai_backend_factory):
    chat = openai_backend_factory(api="chat")
    exact = openai_backend_factory(api="completions")
    users = [f"Which review is more positive, A or B?\nA: {a}\nB: {b}\nAnswer with A or B."
             for a, b in (("Great film.", "Terrible film."), ("Boring.", "A joy to watch."))]
    scores = chat.label_logprobs([chat.render(u, answer_prefix="Answer:") for u in users])
    assert chat.counts["top_k"] == 2
    # The chat request is the user message with the prefix appended, templated by the server:
    reference = exact.label_logprobs([exact.render(u + "\n\nAnswer:") for u in users])
    # A top-k list holds some of each label's spellings ("A", " A"): their sum is at most the exact one.
    shown = np.isfinite(scores.logp)
    assert shown.any()
    assert np.all(scores.logp[shown] <= reference.logp[shown] + LOGP_TOL)
    assert np.all(scores.mass <= reference.mass + LOGP_TOL)


def test_chat_refuses_when_no_label_is_visible(openai_backend_factory, vllm_server):
    chat = openai_backend_factory(api="chat", labels=("Q", "Z"), top_logprobs=3)
    with pytest.raises(EndpointError) as info:
        chat.label_logprobs([chat.render("Which review is more positive, A or B?", answer_prefix="Answer:")])
    message = str(info.value)
    assert message.startswith(f"{vllm_server.url}: none of the answer labels ['Q', 'Z'] is among the 3 most likely "
                              f"next tokens of model '{SERVED_NAME}' for prompt 0 of the batch (it shows ")
    assert "refusing rather than guessing" in message


def test_faults_are_retried_and_nothing_is_lost_or_duplicated(openai_backend_factory, vllm_server, tf_backend,
                                                               tmp_path):
    from pycomp.judge.prompts import PairTemplate
    from pycomp.judge.run import PromptSettings, judge_pairs

    kinds = ("429", "500", "timeout", "drop")
    proxy = FaultProxy("127.0.0.1", _port(vllm_server.url),
                       lambda n: kinds[(n // 2) % 4] if n < 16 and n % 2 == 0 else None)
    try:
        policy = RetryPolicy(retries=8, backoff=0.05, max_backoff=0.5, timeout=10.0)
        faulty = openai_backend_factory(urls=[proxy.url], policy=policy, concurrency=4)
        direct = openai_backend_factory()
        texts, pairs, _ = review_prompts(tf_backend, n_pairs=10)
        settings = PromptSettings("more positive", "review")
        res = judge_pairs(faulty, PairTemplate(), texts, pairs, out=tmp_path / "faulty.jsonl", settings=settings,
                          batch_size=8, progress=False)
        ref = judge_pairs(direct, PairTemplate(), texts, pairs, out=tmp_path / "direct.jsonl", settings=settings,
                          batch_size=8, progress=False)
    finally:
        proxy.close()
    for kind in kinds:
        assert proxy.count(kind) == 2, proxy.log
    assert faulty.pool.retried == {"http-429": 2, "http-500": 2, "timeout": 2, "connection": 2}
    # every prompt reached the server exactly once, and was logged exactly once
    assert len(proxy.forwarded) == 2 * len(pairs)
    assert len({json.dumps(p["prompt"]) for p in proxy.forwarded}) == 2 * len(pairs)
    records = [json.loads(line) for line in (tmp_path / "faulty.jsonl").read_text().splitlines()[1:]]
    assert len(records) == 2 * len(pairs) == len({r["key"] for r in records})
    assert res.summary["n_judged"] == 2 * len(pairs)
    np.testing.assert_allclose(res.comparisons["p_ab"], ref.comparisons["p_ab"], atol=LOGP_TOL)
    np.testing.assert_allclose(res.comparisons["p_ba"], ref.comparisons["p_ba"], atol=LOGP_TOL)


def test_requests_are_spread_over_endpoints(openai_backend_factory, vllm_server, tf_backend):
    proxy = FaultProxy("127.0.0.1", _port(vllm_server.url), lambda n: None)
    try:
        backend = openai_backend_factory(urls=[proxy.url, vllm_server.url], concurrency=4)
        _, _, prompts = review_prompts(tf_backend, n_pairs=6)
        both = backend.label_logprobs(prompts)
    finally:
        proxy.close()
    assert 0 < len(proxy.forwarded) < len(prompts)
    alone = openai_backend_factory().label_logprobs(prompts)
    np.testing.assert_allclose(both.logp, alone.logp, atol=LOGP_TOL)


def test_unreachable_url_names_the_url_and_model(openai_backend_factory):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    with pytest.raises(EndpointError) as info:
        openai_backend_factory(urls=[url])
    message = str(info.value)
    assert message.startswith(f"could not reach {url}/models: ConnectError")
    assert message.endswith(f"(model '{SERVED_NAME}'); start the server or fix --base-url")


def test_a_model_the_server_does_not_serve(openai_backend_factory, vllm_server):
    from pycomp.judge.openai_backend import OpenAIBackend

    with pytest.raises(EndpointError) as info:
        OpenAIBackend("no-such-model", [vllm_server.url], api_key_env=KEY_ENV)
    assert str(info.value) == (f"{vllm_server.url} does not serve model 'no-such-model' (it serves: {SERVED_NAME}); "
                               f"pass --model with one of those names")


def test_reply_without_logprobs_is_refused(openai_backend_factory, vllm_server):
    proxy = FaultProxy("127.0.0.1", _port(vllm_server.url), lambda n: "strip")
    try:
        backend = openai_backend_factory(urls=[proxy.url])
        with pytest.raises(EndpointError) as info:
            backend.label_logprobs([backend.render("Which is better, A or B?", answer_prefix="Answer:")])
    finally:
        proxy.close()
    assert str(info.value).startswith(f"{proxy.url} answered model '{SERVED_NAME}' (prompt 0 of the batch) without "
                                      f"log-probabilities; the judge needs next-token log-probabilities")


def test_prompt_longer_than_the_server_context(openai_backend_factory, vllm_server):
    from pycomp.judge.openai_backend import ServerPromptTooLongError

    backend = openai_backend_factory()
    short = backend.render("Which is better, A or B?")
    long = backend.render("word " * (MAX_MODEL_LEN + 10))
    n = len(backend.tokenizer(long, add_special_tokens=False)["input_ids"])
    with pytest.raises(ServerPromptTooLongError) as info:  # checked here, before sending
        backend.label_logprobs([short, long])
    assert str(info.value) == (f"prompt 1 of the batch has {n} tokens, more than the context of {MAX_MODEL_LEN - 1} "
                               f"tokens of model '{SERVED_NAME}' at {vllm_server.url}")
    backend.max_model_len = None  # as for a server that does not say: the server's refusal is read
    with pytest.raises(ServerPromptTooLongError) as info:
        backend.label_logprobs([short, long])
    assert info.value.index == 1 and info.value.url == vllm_server.url
    assert str(info.value).startswith(f"prompt 1 of the batch has {n} tokens, more than the context of "
                                      f"{MAX_MODEL_LEN} tokens of model '{SERVED_NAME}' at {vllm_server.url} (This "
                                      f"model's maximum context length is {MAX_MODEL_LEN} tokens.")


def test_api_key_from_the_environment(openai_backend_factory, vllm_server, monkeypatch):
    monkeypatch.delenv("PYCOMP_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match=r"^--api-key-env PYCOMP_TEST_NO_SUCH_KEY: the environment variable "
                                         r"PYCOMP_TEST_NO_SUCH_KEY is not set"):
        openai_backend_factory(api_key_env="PYCOMP_TEST_NO_SUCH_KEY")
    monkeypatch.setenv("PYCOMP_TEST_WRONG_KEY", "wrong")
    with pytest.raises(EndpointError) as info:
        openai_backend_factory(api_key_env="PYCOMP_TEST_WRONG_KEY")
    assert str(info.value).startswith(f"{vllm_server.url}/models answered HTTP 401")
    assert info.value.url == vllm_server.url and info.value.model == SERVED_NAME


def test_pycomp_judge_command_with_the_openai_backend(vllm_server, tf_backend, tmp_path):
    from typer.testing import CliRunner

    from pycomp.cli import app

    out = tmp_path / "comparisons.jsonl"
    args = ["judge", "example:reviews", "--out", str(out), "--backend", "openai", "--base-url", vllm_server.url,
            "--model", SERVED_NAME, "--api-key-env", KEY_ENV, "--per-item", "1", "--concurrency", "4",
            "--no-progress", "--no-cache"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "comparisons.judgements.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    assert header["model"]["backend"] == "openai" and header["model"]["model"] == SERVED_NAME
    records = [json.loads(line) for line in lines[1:]]
    comparisons = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2 * len(comparisons) > 0
    assert all(0 < r["p_a"] < 1 and 0 < r["mass"] <= 1 for r in records)
