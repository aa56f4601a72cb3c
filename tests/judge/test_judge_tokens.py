"""Answer-token resolution and next-token probabilities on the real SmolLM2-135M."""
import numpy as np
import pytest

from pycomp.judge.prompts import PairTemplate
from pycomp.judge.transformers_backend import TransformersBackend, _common_prefix_length, label_token_ids

pytestmark = pytest.mark.llm

ATOL = 2e-4  # float32 logits: batched / padded / cached passes differ by ~1e-5


def test_label_ids_cover_leading_space_variants(backend):
    tok = backend.tokenizer
    a_ids, b_ids = backend.label_ids
    # SmolLM2 (GPT-2 style BPE): "A" and " A" are different single tokens.
    assert tok.encode("A", add_special_tokens=False)[0] in a_ids
    assert tok.encode(" A", add_special_tokens=False)[0] in a_ids
    assert tok.encode(" B", add_special_tokens=False)[0] in b_ids
    assert not set(a_ids) & set(b_ids)
    for ids, label in ((a_ids, "A"), (b_ids, "B")):
        for i in ids:
            assert tok.decode([i]).strip() == label


def test_label_after_prefix_is_found(backend):
    prompt = backend.render("Which is better, text A or text B?", answer_prefix="The text that is better is text")
    ids = label_token_ids(backend.tokenizer, "B", prompt)
    appended = backend.tokenizer.encode(prompt + " B", add_special_tokens=False)[-1]
    assert appended in ids


def test_multi_token_label_is_refused(backend):
    with pytest.raises(ValueError, match="not a single token"):
        label_token_ids(backend.tokenizer, "Xylophonequartz")


def test_overlapping_labels_are_refused(backend):
    with pytest.raises(ValueError, match="labels"):
        TransformersBackend(backend.model, backend.tokenizer, backend.info, labels=("A", " A"))


def test_probabilities_match_a_plain_full_forward(backend):
    """p(A) from the fast path equals softmax over the full-vocabulary logits of a plain forward pass."""
    import torch

    template = PairTemplate()
    user = template.render("7", "3", attribute="larger", noun="number")
    prompt = backend.render(user, answer_prefix=template.render_prefix(attribute="larger", noun="number"))
    scores = backend.label_logprobs([prompt])
    enc = backend.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        logits = backend.model(**enc).logits[0, -1].double()
    probs = torch.softmax(logits, dim=-1)
    pa = probs[backend.label_ids[0]].sum().item()
    pb = probs[backend.label_ids[1]].sum().item()
    assert scores.mass[0] == pytest.approx(pa + pb, abs=ATOL)
    assert scores.p_a[0] == pytest.approx(pa / (pa + pb), abs=ATOL)
    # p(A) = sigmoid(l_A - l_B)
    assert scores.p_a[0] == pytest.approx(1 / (1 + np.exp(scores.logp_b[0] - scores.logp_a[0])), abs=1e-12)
    # With the answer prefix the judge answers with the labels.
    assert scores.mass[0] > 0.9


def test_batched_shared_prefix_and_single_agree(backend):
    """Left padding, position ids and the shared-prefix cache do not change the answer."""
    template = PairTemplate()
    prefix = template.render_prefix(attribute="more positive", noun="review")
    texts = ["The movie was awful.", "I loved every minute of this wonderful, moving film.", "Bad."]
    prompts = [backend.render(template.render(a, b, attribute="more positive", noun="review"), answer_prefix=prefix)
               for a in texts for b in texts if a != b]
    single = np.array([backend.label_logprobs([p]).logp_a[0] for p in prompts])
    saved = backend.share_prefix
    try:
        backend.share_prefix = False
        padded = backend.label_logprobs(prompts)
        backend.share_prefix = True
        shared = backend.label_logprobs(prompts)
    finally:
        backend.share_prefix = saved
    assert np.allclose(padded.logp_a, single, atol=ATOL)
    assert np.allclose(shared.logp_a, single, atol=ATOL)
    assert np.allclose(shared.logp_b, padded.logp_b, atol=ATOL)


def test_common_prefix_length_leaves_a_suffix():
    assert _common_prefix_length([[1, 2, 3], [1, 2, 4]]) == 2
    assert _common_prefix_length([[1, 2], [1, 2, 3]]) == 1  # every row keeps >= 1 token
    assert _common_prefix_length([[5], [6]]) == 0


def test_prompt_too_long_is_reported(backend):
    from pycomp.judge.backend import PromptTooLongError

    saved = backend.max_length
    try:
        backend.max_length = 8
        with pytest.raises(PromptTooLongError, match="more than the model's context"):
            backend.label_logprobs(["short", "this prompt is certainly longer than eight tokens, surely it is"])
    finally:
        backend.max_length = saved
