"""What `pycomp rank` prints: no third-party noise, every figure explained, a separation verdict."""
import json
import logging
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from pycomp.commands.rank import _metrics_lines
from pycomp.judge._quiet import BITSANDBYTES_KERNEL_NOTICE, no_bitsandbytes_kernel_notice
from pycomp.judge.run import judge_summary, summary_line, summary_warnings
from pycomp.separation import adjacent_separation

CRITERION = "sqrt(se_a^2 + se_b^2)"


# ---------------------------------------------------------------- separation verdict

def test_separation_counts_adjacent_pairs_against_a_hand_computed_ranking():
    # Ranked: 3.0 (se .5), 1.0 (.5), 0.9 (1.0), 0.0 (.3), -2.5 (1.0); given shuffled.
    # gaps 2.0 > sqrt(.5) = .707 yes; 0.1 > sqrt(1.25) = 1.118 no; 0.9 > sqrt(1.09) = 1.044 no; 2.5 > 1.044 yes
    scores = [0.9, -2.5, 3.0, 0.0, 1.0]
    se = [1.0, 1.0, 0.5, 0.3, 0.5]
    counts, text = adjacent_separation(scores, se)
    assert counts == {"n_pairs": 4, "n_separated": 2, "n_without_se": 0, "criterion": CRITERION}
    assert text == (f"separation: 2 of 4 adjacent pairs in the ranking differ by more than their combined "
                    f"standard error {CRITERION}; at least half of the adjacent items are told apart")


def test_separation_ranks_within_groups_only():
    # g1 as above (2 of 4); g2: 0.2 vs 0.0, gap 0.2 > sqrt(.02) = .141 (1 of 1); g3 has one item (no pair).
    scores = [0.9, 0.2, -2.5, 3.0, 7.0, 0.0, 1.0, 0.0]
    se = [1.0, 0.1, 1.0, 0.5, 9.0, 0.3, 0.5, 0.1]
    groups = ["g1", "g2", "g1", "g1", "g3", "g1", "g1", "g2"]
    counts, text = adjacent_separation(scores, se, groups)
    assert counts["n_pairs"] == 5 and counts["n_separated"] == 3 and counts["n_groups"] == 3
    assert counts["per_group"] == {"g1": {"n_pairs": 4, "n_separated": 2, "n_without_se": 0},
                                   "g2": {"n_pairs": 1, "n_separated": 1, "n_without_se": 0},
                                   "g3": {"n_pairs": 0, "n_separated": 0, "n_without_se": 0}}
    assert text.startswith("separation: 3 of 5 adjacent pairs within the 3 groups differ by more than")
    # Without groups the same items make 7 adjacent pairs, crossing groups.
    assert adjacent_separation(scores, se)[0]["n_pairs"] == 7


def test_separation_verdicts_and_missing_standard_errors():
    # The README example's shape: scores within +-0.08, every se about 0.77.
    scores = np.linspace(-0.08, 0.08, 20)
    counts, text = adjacent_separation(scores, np.full(20, 0.77))
    assert counts["n_separated"] == 0 and counts["n_pairs"] == 19
    assert text.endswith("0 of 19 adjacent pairs in the ranking differ by more than their combined standard error "
                         f"{CRITERION}; the ranking is within its own noise: no adjacent items are told apart")
    assert adjacent_separation([0, 1, 2, 10], [1, 1, 1, 1])[1].endswith("the ranking is mostly within its own noise")
    assert adjacent_separation([0, 5, 10], [1, 1, 1])[1].endswith("every adjacent pair is told apart")
    counts, text = adjacent_separation([0.0, 5.0, 10.0], [1.0, math.nan, 1.0])
    assert counts["n_without_se"] == 2 and counts["n_separated"] == 0
    assert "0 of 0 adjacent pairs" in text and text.endswith("(2 pairs have no standard error)")
    with pytest.raises(ValueError, match="se has 2 values for 3 scores"):
        adjacent_separation([1, 2, 3], [1, 1])


# ---------------------------------------------------------------- every figure explained

def test_judge_summary_line_explains_each_figure():
    # Always the first position: every pair's winner flips with the order.
    summary = judge_summary([0.75, 0.8], [0.7, 0.75], [0.99, 0.99], [0.99, 0.99])
    assert summary["order_consistency"] == 0.0
    assert summary_line(summary) == (
        "judge: position bias +0.250 (mean p(first shown wins) - 0.5; 0 = none), order consistency 0.00 (share of "
        "pairs with the same winner in both orders), answer-token mass 0.99 (mean probability on the two answer "
        "labels)")
    biased = judge_summary([0.9, 0.8], [0.85, 0.8], [0.99, 0.99], [0.98, 0.98])
    assert any("which is why order consistency is 0.00" in w for w in summary_warnings(biased))


def test_metrics_lines_explain_each_figure():
    mets = {"spearman": 0.7726, "pearson": 0.776, "pairwise_accuracy": 0.8375, "fit_on": "all",
            "rmse_affine": {"rmse": 0.8919, "a": 22.51, "b": 2.9999, "n_fit": 20, "n_eval": 20,
                            "evaluated_on": "all (in-sample)"}}
    assert _metrics_lines(mets, "stars") == [
        "vs gold (stars): Spearman 0.773, Pearson 0.776 (correlations of the scores with gold over all items; "
        "1 = same order/line), pairwise accuracy 0.838 (share of item pairs with different gold that the scores "
        "order the same way; 0.5 = chance)",
        "RMSE 0.892 (in gold units) of the affine map gold = 22.5 * score + 3, fitted and evaluated on all 20 items "
        "(in-sample)",
    ]
    grouped = dict(mets, spearman_per_group_mean=0.5, n_groups=16, fit_on="split=train",
                   rmse_affine=dict(mets["rmse_affine"], b=-0.5, n_eval=8, evaluated_on="held-out"))
    first, second = _metrics_lines(grouped, "coherence")
    assert ", per-group Spearman 0.500 (mean over the 16 groups)" in first
    assert "share of item pairs within a group with different gold" in first
    assert second.endswith("gold = 22.5 * score - 0.5, fitted on split=train, evaluated on the 8 held-out items")


# ---------------------------------------------------------------- third-party noise

def test_bitsandbytes_notice_is_dropped_only_inside_the_block(caplog):
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    notice = f"{BITSANDBYTES_KERNEL_NOTICE}: No module named 'kernels'. Please make sure ..."
    with caplog.at_level(logging.WARNING, logger=logger.name):
        with no_bitsandbytes_kernel_notice():
            logger.warning(notice)
            logger.warning("another bitsandbytes warning")
        logger.warning(notice)
    assert [r.getMessage() for r in caplog.records] == ["another bitsandbytes warning", notice]
    assert not logger.filters


@pytest.mark.llm
def test_shared_prefix_pass_matches_plain_pass_without_deprecation_warnings(backend):
    # The shared-prefix path hands transformers a key/value cache; it must use the name this
    # transformers version wants (no FutureWarning) and give the plain padded pass's logits.
    import torch

    user = "Which review is more positive?\n\nReview A: {}\n\nReview B: The food was fine."
    prompts = [backend.render(user.format(text), answer_prefix="The review that is more positive is review")
               for text in ("Great place!", "Awful, never again.", "It was okay, I guess, nothing special.")]
    ids = backend.tokenizer(prompts, add_special_tokens=False)["input_ids"]
    from pycomp.judge.transformers_backend import _common_prefix_length

    common = _common_prefix_length(ids)
    assert common >= backend.min_shared_prefix
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.inference_mode():
            shared = backend._forward_shared(ids, common)
            plain = backend._forward_padded(ids)
        warnings.warn("the user's own warning stays visible", UserWarning)
    assert [str(w.message) for w in caught] == ["the user's own warning stays visible"]
    torch.testing.assert_close(shared, plain, atol=2e-4, rtol=1e-4)


@pytest.mark.llm
def test_rank_prints_no_third_party_noise_and_explains_its_figures(small_items, tmp_path):
    items = tmp_path / "items.jsonl"
    small_items.to_json(items, orient="records", lines=True)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PYCOMP_VERBOSE", None)
    cmd = [sys.executable, "-W", "always::FutureWarning", "-m", "pycomp.cli", "rank", str(items), "--id-field", "id",
           "--gold-field", "stars", "--attribute", "more positive", "--noun", "review", "--per-item", "2",
           "--out", str(out), "--no-progress", "--threads", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    printed = res.stdout + res.stderr
    for noise in ("FutureWarning", "past_key_values", "gemm_4bit_forward", "kernels-community"):
        assert noise not in printed, printed
    assert res.stderr == "", res.stderr
    assert "(share of pairs with the same winner in both orders)" in res.stdout
    assert "vs gold (stars): Spearman" in res.stdout and "RMSE" in res.stdout

    scores = pd.read_csv(out / "scores.csv")
    counts, verdict = adjacent_separation(scores["score"], scores["se"])
    assert verdict in res.stdout.splitlines()
    assert json.loads((out / "run.json").read_text())["separation"] == counts
    assert json.loads((out / "metrics.json").read_text())["separation"] == counts


@pytest.mark.llm
def test_loading_a_lora_adapter_raises_no_third_party_future_warning(tmp_path):
    # peft reads transformers' deprecated `is_gradient_checkpointing`: a FutureWarning that is not
    # the user's concern. (add_lora imports peft first, so its bitsandbytes notice is not tested here.)
    from pycomp.judge import models
    from pycomp.judge.transformers_backend import TransformersBackend
    from pycomp.train.model import add_lora

    model, _, _ = models.load_model("smollm2-135m", device="cpu")
    add_lora(model, r=2, target_modules="q_proj", seed=0).save_pretrained(tmp_path / "adapter")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapted = TransformersBackend.load("smollm2-135m", adapter=tmp_path / "adapter", device="cpu")
        adapted.label_logprobs([adapted.render("Which is larger, A: 7 or B: 3?", answer_prefix="Answer:")] * 2)
    assert [str(w.message) for w in caught if issubclass(w.category, FutureWarning)] == []
