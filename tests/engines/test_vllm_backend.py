"""The vllm backend: a real in-process vLLM engine on SmolLM2 against the transformers backend.

Tolerance: both run the same fp32 weights on the same token ids; measured on this
machine the log-probabilities differ by at most 1.9e-5 and p(A) by 4.5e-6 (different
kernels, summation order). The bounds below (1e-3 on log-probabilities and on p(A))
leave a wide margin for other CPUs while still catching a wrong token, position or
softmax (each of which moves them by 1e-1 or more).
"""
import math

import numpy as np
import pytest

from engine_cases import MAX_MODEL_LEN, review_prompts

from pycomp.judge.backend import PromptTooLongError

LOGP_TOL = 1e-3
P_TOL = 1e-3

pytestmark = pytest.mark.llm


def test_vllm_agrees_with_transformers_on_pairwise_prompts(vllm_backend, tf_backend):
    _, _, prompts = review_prompts(tf_backend, n_pairs=6)
    assert prompts == review_prompts(vllm_backend, n_pairs=6)[2]  # same rendering
    assert vllm_backend.label_ids == tf_backend.label_ids
    ref = tf_backend.label_logprobs(prompts)
    got = vllm_backend.label_logprobs(prompts)
    assert got.logp.shape == (12, 2)
    dlogp = float(np.max(np.abs(got.logp - ref.logp)))
    dp = float(np.max(np.abs(got.p_a - ref.p_a)))
    print(f"vllm vs transformers on {len(prompts)} prompts: max |dlogp| {dlogp:.2e}, max |dp| {dp:.2e}")
    assert dlogp < LOGP_TOL and dp < P_TOL
    np.testing.assert_allclose(got.mass, ref.mass, atol=1e-3)
    assert np.all(got.mass > 0.3)  # SmolLM2 answers with a label here


def test_labels_far_outside_the_top_k_are_exact(vllm_backend, tf_backend):
    """Labels the model never answers (ranks in the thousands) still get their exact log-probability."""
    from pycomp.judge.vllm_backend import VLLMBackend

    _, _, prompts = review_prompts(tf_backend, n_pairs=2)
    odd = VLLMBackend(vllm_backend.llm, vllm_backend.tokenizer, vllm_backend.info, labels=("Q", "Z"))
    got = odd.label_logprobs(prompts)
    logp = _reference_logp(tf_backend, prompts, odd.label_ids)
    assert np.all(got.mass < 1e-3)  # far outside any top-20 list
    np.testing.assert_allclose(got.logp, logp, atol=LOGP_TOL)


def test_five_score_labels(vllm_backend, tf_backend):
    from pycomp.judge.transformers_backend import label_token_ids
    from pycomp.judge.vllm_backend import VLLMBackend

    prompts = [tf_backend.render(f"Rate this review from 1 to 5: '{text}'", answer_prefix="Score:")
               for text in ("A wonderful, moving film.", "Dull and far too long.")]
    labels = ("1", "2", "3", "4", "5")
    scores = VLLMBackend(vllm_backend.llm, vllm_backend.tokenizer, vllm_backend.info,
                         labels=labels).label_logprobs(prompts)
    assert scores.logp.shape == (2, 5)
    ids = [label_token_ids(tf_backend.tokenizer, label, prompts[0]) for label in labels]
    np.testing.assert_allclose(scores.logp, _reference_logp(tf_backend, prompts, ids), atol=LOGP_TOL)
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0)


def test_prompt_longer_than_the_context_is_refused(vllm_backend):
    short = vllm_backend.render("Which is better, A or B?")
    long = vllm_backend.render("word " * (MAX_MODEL_LEN + 10))
    with pytest.raises(PromptTooLongError) as info:
        vllm_backend.label_logprobs([short, long])
    assert info.value.index == 1 and info.value.limit == MAX_MODEL_LEN - 1
    assert info.value.n_tokens > MAX_MODEL_LEN
    assert str(info.value) == (f"prompt 1 has {info.value.n_tokens} tokens, more than the model's context of "
                               f"{MAX_MODEL_LEN - 1}")


def test_empty_batch_and_fingerprint(vllm_backend, tf_backend):
    assert vllm_backend.label_logprobs([]).logp.shape == (0, 2)
    fp = vllm_backend.fingerprint()
    assert fp == {"backend": "vllm", "model": tf_backend.info["identity"], "adapter": None, "dtype": "float32",
                  "quantization": "none", "chat_template": True,
                  "label_ids": [list(ids) for ids in tf_backend.label_ids]}
    print(f"in-process engine start: {vllm_backend.start_seconds} s")


def _reference_logp(tf_backend, prompts, label_ids):
    """Full-vocabulary log-softmax at the answer position, one prompt at a time (plain torch)."""
    import torch

    out = np.empty((len(prompts), len(label_ids)))
    for k, prompt in enumerate(prompts):
        ids = tf_backend.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = tf_backend.model(input_ids=ids).logits[0, -1].double()
        logp = torch.log_softmax(logits, dim=-1)
        for j, ids_j in enumerate(label_ids):
            out[k, j] = math.log(sum(math.exp(float(logp[i])) for i in ids_j))
    return out
